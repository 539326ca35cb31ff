/**
 * KServe v2 / Open Inference Protocol over REST, as `tritonclient.http` calls it: server and model
 * metadata, health, and inference with Triton's binary tensor extension. Every model of the catalog
 * is a v2 model with the single version "1". Errors are non-200 with `{"error": "message"}`.
 *
 * Convention: input `IMAGE`, BYTES, shape [1], is the encoded image (JPEG, PNG, …; base64 in JSON,
 * raw bytes in binary). Outputs: BOXES FP32 [N,4] (xmin, ymin, xmax, ymax in original pixels),
 * SCORES FP32 [N] descending, CLASS_IDS INT64 [N], LABELS BYTES [N].
 */
import type { Request, Response, Router } from 'express';
import express from 'express';
import type { Detection } from '../../detection/types';
import { readRawBody } from '../body';
import { useErrorStyle } from '../error-style';
import { HttpError } from '../errors';
import type { ModelEndpoint } from '../model-catalog';
import { MAX_DETECTIONS, SCORE_THRESHOLD } from '../parameters';
import { parseNumber } from '../request-params';
import type { RouteContext, RouteSpec } from './context';
import { encodeInferResponse, parseInferRequest, type Datatype, type InferRequest, type OutputTensor } from './kserve-tensors';

export const KSERVE_ROUTES = [
  { path: '/v2', methods: ['GET'], errorStyle: 'message' },
  { path: '/v2/health/live', methods: ['GET'], errorStyle: 'message' },
  { path: '/v2/health/ready', methods: ['GET'], errorStyle: 'message' },
  { path: '/v2/models/:model', methods: ['GET'], errorStyle: 'message' },
  { path: '/v2/models/:model/versions/:version', methods: ['GET'], errorStyle: 'message' },
  { path: '/v2/models/:model/ready', methods: ['GET'], errorStyle: 'message' },
  { path: '/v2/models/:model/versions/:version/ready', methods: ['GET'], errorStyle: 'message' },
  { path: '/v2/models/:model/config', methods: ['GET'], errorStyle: 'message' },
  { path: '/v2/models/:model/versions/:version/config', methods: ['GET'], errorStyle: 'message' },
  { path: '/v2/models/:model/infer', methods: ['POST'], errorStyle: 'message' },
  { path: '/v2/models/:model/versions/:version/infer', methods: ['POST'], errorStyle: 'message' },
] as const satisfies readonly RouteSpec[];

export const MODEL_VERSION = '1';
export const INPUT_NAME = 'IMAGE';
const OUTPUTS: ReadonlyArray<{ name: string; datatype: Datatype; shape: number[] }> = [
  { name: 'BOXES', datatype: 'FP32', shape: [-1, 4] },
  { name: 'SCORES', datatype: 'FP32', shape: [-1] },
  { name: 'CLASS_IDS', datatype: 'INT64', shape: [-1] },
  { name: 'LABELS', datatype: 'BYTES', shape: [-1] },
];

/** The model, checking the version when the path names one. */
function resolveVersioned(context: RouteContext, req: Request): ModelEndpoint {
  const endpoint = context.catalog.resolve(String(req.params.model));
  const version = req.params.version;
  if (version !== undefined && version !== MODEL_VERSION) {
    throw new HttpError(
      'MODEL_NOT_FOUND',
      `model '${endpoint.name}' has no version '${String(version)}'; its only version is '${MODEL_VERSION}'`,
    );
  }
  return endpoint;
}

function modelMetadata(endpoint: ModelEndpoint): Record<string, unknown> {
  return {
    name: endpoint.name,
    versions: [MODEL_VERSION],
    platform: 'cpwc-detect',
    inputs: [{ name: INPUT_NAME, datatype: 'BYTES', shape: [1] }],
    outputs: OUTPUTS,
  };
}

/** Triton's model configuration (GET …/config): no batching, one BYTES input, four outputs. */
function modelConfig(endpoint: ModelEndpoint): Record<string, unknown> {
  const tritonType = (datatype: Datatype): string => (datatype === 'BYTES' ? 'TYPE_STRING' : `TYPE_${datatype}`);
  return {
    name: endpoint.name,
    platform: 'cpwc-detect',
    backend: 'cpwc-detect',
    max_batch_size: 0,
    input: [{ name: INPUT_NAME, data_type: 'TYPE_STRING', dims: [1] }],
    output: OUTPUTS.map((o) => ({ name: o.name, data_type: tritonType(o.datatype), dims: o.shape })),
  };
}

function outputTensors(detections: readonly Detection[]): Map<string, OutputTensor> {
  const sorted = [...detections].sort((a, b) => b.score - a.score);
  const n = sorted.length;
  return new Map<string, OutputTensor>([
    [
      'BOXES',
      {
        name: 'BOXES',
        datatype: 'FP32',
        shape: [n, 4],
        values: sorted.flatMap((d) => [d.box.xmin, d.box.ymin, d.box.xmax, d.box.ymax].map(Math.fround)),
      },
    ],
    ['SCORES', { name: 'SCORES', datatype: 'FP32', shape: [n], values: sorted.map((d) => Math.fround(d.score)) }],
    ['CLASS_IDS', { name: 'CLASS_IDS', datatype: 'INT64', shape: [n], values: sorted.map((d) => BigInt(d.class_id)) }],
    ['LABELS', { name: 'LABELS', datatype: 'BYTES', shape: [n], values: sorted.map((d) => d.label) }],
  ]);
}

/** The one image of a request: input IMAGE, BYTES, one element. */
function requestImage(request: InferRequest): Buffer {
  const unknown = request.inputs.find((t) => t.name !== INPUT_NAME);
  if (unknown !== undefined)
    throw new HttpError('INFER_REQUEST_INVALID', `unknown input '${unknown.name}'; the only input is ${INPUT_NAME} (BYTES, shape [1])`);
  const input = request.inputs.find((t) => t.name === INPUT_NAME);
  if (input === undefined)
    throw new HttpError('INFER_REQUEST_INVALID', `the request has no input ${INPUT_NAME} (BYTES, shape [1]: the encoded image)`);
  if (input.datatype !== 'BYTES')
    throw new HttpError('INFER_REQUEST_INVALID', `input ${INPUT_NAME} must have datatype BYTES, got ${input.datatype}`);
  const count = input.shape.reduce((a, b) => a * b, 1);
  if (count !== 1 || input.elements.length !== 1) {
    throw new HttpError(
      'BATCH_UNSUPPORTED',
      `one image per inference request: input ${INPUT_NAME} must have shape [1], ` +
        `got shape [${input.shape.join(',')}] with ${input.elements.length} elements`,
    );
  }
  return input.elements[0] as Buffer;
}

function requestOptions(context: RouteContext, request: InferRequest): { scoreThreshold?: number; maxDetections?: number } {
  const source = (name: string): string | undefined => {
    const value = request.parameters[name];
    if (value === undefined || value === null) return undefined;
    return typeof value === 'string' ? value : JSON.stringify(value);
  };
  const scoreThreshold = parseNumber(source, SCORE_THRESHOLD) ?? context.config.scoreThreshold;
  const maxDetections = parseNumber(source, MAX_DETECTIONS) ?? context.config.maxDetections;
  return { ...(scoreThreshold === undefined ? {} : { scoreThreshold }), ...(maxDetections === undefined ? {} : { maxDetections }) };
}

function headerLength(req: Request): number | undefined {
  const raw = req.headers['inference-header-content-length'];
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (typeof raw !== 'string' || !/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value)) {
    throw new HttpError('INFER_REQUEST_INVALID', `Inference-Header-Content-Length must be a byte count, got '${String(raw)}'`);
  }
  return value;
}

async function infer(context: RouteContext, req: Request, res: Response): Promise<void> {
  const endpoint = resolveVersioned(context, req);
  const signal = context.signal(res);
  context.admit(res);
  const length = headerLength(req);
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
    throw new HttpError(
      'INFER_REQUEST_INVALID',
      `Content-Encoding '${encoding}' is not supported: send the inference request uncompressed`,
    );
  }
  const body = await readRawBody(req, { maxBodyBytes: context.config.maxBodyBytes, signal });
  const request = parseInferRequest(body, length);
  const image = requestImage(request);
  const options = requestOptions(context, request);
  const requested = request.outputs ?? OUTPUTS.map((o) => ({ name: o.name, binary: request.parameters.binary_data_output === true }));
  for (const output of requested) {
    if (!OUTPUTS.some((o) => o.name === output.name)) {
      throw new HttpError('INFER_REQUEST_INVALID', `unknown output '${output.name}'; outputs are ${OUTPUTS.map((o) => o.name).join(', ')}`);
    }
  }
  const { result } = await endpoint.detect(image, options, signal);
  const tensors = outputTensors(result.detections);
  const head: Record<string, unknown> = { model_name: endpoint.name, model_version: MODEL_VERSION };
  if (request.id !== undefined) head.id = request.id;
  const { body: answer, headers } = encodeInferResponse(
    head,
    requested.map((o) => ({ tensor: tensors.get(o.name) as OutputTensor, binary: o.binary })),
  );
  res.status(200).set(headers).end(answer);
}

/** The KServe v2 routes, to mount on the app's root. */
export function kserveRoutes(context: RouteContext, serverVersion: string): Router {
  const router = express.Router();
  const style = useErrorStyle('message');
  const ready = (res: Response, body: Record<string, unknown>): void => {
    const isReady = context.ready();
    res.status(isReady ? 200 : 503).json({ ...body, ready: isReady });
  };
  router.get('/v2', style, (_req: Request, res: Response) => {
    res.status(200).json({ name: 'cpwc-detect', version: serverVersion, extensions: ['binary_tensor_data'] });
  });
  router.get('/v2/health/live', style, (_req: Request, res: Response) => {
    res.status(200).json({ live: true });
  });
  router.get('/v2/health/ready', style, (_req: Request, res: Response) => ready(res, {}));
  for (const prefix of ['/v2/models/:model', '/v2/models/:model/versions/:version']) {
    router.get(prefix, style, context.requireKey, (req: Request, res: Response) => {
      res.status(200).json(modelMetadata(resolveVersioned(context, req)));
    });
    router.get(`${prefix}/config`, style, context.requireKey, (req: Request, res: Response) => {
      res.status(200).json(modelConfig(resolveVersioned(context, req)));
    });
    router.get(`${prefix}/ready`, style, context.requireKey, (req: Request, res: Response) => {
      ready(res, { name: resolveVersioned(context, req).name });
    });
    router.post(`${prefix}/infer`, style, context.refuseWhileDraining, context.requireKey, (req: Request, res: Response) =>
      infer(context, req, res),
    );
  }
  return router;
}
