/**
 * Hugging Face inference layout: `POST /models/{model}` answers object detection as the Hugging
 * Face Inference API does, so `huggingface_hub.InferenceClient(model=URL).object_detection` and
 * `@huggingface/inference`'s `objectDetection({endpointUrl: URL})` work unchanged. Errors are
 * `{"error": "message"}`, as Hugging Face's.
 */
import type { Request, Response, Router } from 'express';
import express from 'express';
import type { Detection } from '../../detection/types';
import { readRawBody } from '../body';
import { useErrorStyle } from '../error-style';
import { HttpError } from '../errors';
import { HF_THRESHOLD } from '../parameters';
import { parseNumber } from '../request-params';
import type { RouteContext, RouteSpec } from './context';

export const HUGGINGFACE_ROUTES = [
  { path: '/models/:model', methods: ['POST'], errorStyle: 'message' },
] as const satisfies readonly RouteSpec[];

export interface HuggingFaceDetection {
  label: string;
  score: number;
  box: { xmin: number; ymin: number; xmax: number; ymax: number };
}

export interface HuggingFaceRequest {
  image: Buffer;
  threshold: number | undefined;
}

/** JSON by its Content-Type, or a body without one that starts with `{` (no image format does). */
function isJson(req: Request, body: Buffer): boolean {
  const type = req.headers['content-type'];
  if (type === undefined) return body.subarray(0, 64).toString('latin1').trimStart().startsWith('{');
  return /^application\/json\b/i.test(type);
}

/** `"<base64>"` or a data URL `"data:image/png;base64,<base64>"` to bytes. */
function decodeBase64Image(text: string): Buffer {
  const payload = text.startsWith('data:') ? text.slice(text.indexOf(',') + 1) : text;
  const compact = payload.replace(/\s+/g, '');
  if (compact === '' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(compact)) {
    throw new HttpError('INVALID_PARAMETER', 'inputs must be the image as a base64 string (URLs are not fetched by this server)');
  }
  return Buffer.from(compact, 'base64');
}

/**
 * The JSON form `{"inputs": "<base64 image>", "parameters": {"threshold": t}}` or the raw image
 * (any or no Content-Type).
 */
export function parseHuggingFaceBody(body: Buffer, json: boolean): HuggingFaceRequest {
  if (!json) return { image: body, threshold: undefined };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError('BAD_REQUEST', 'the body is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new HttpError('BAD_REQUEST', 'the JSON body must be an object {"inputs": "<base64 image>"}');
  const { inputs, parameters } = parsed as { inputs?: unknown; parameters?: unknown };
  if (typeof inputs !== 'string') throw new HttpError('INVALID_PARAMETER', 'inputs must be the image as a base64 string');
  let threshold: number | undefined;
  if (parameters !== undefined && parameters !== null) {
    if (typeof parameters !== 'object' || Array.isArray(parameters))
      throw new HttpError('INVALID_PARAMETER', 'parameters must be an object');
    const raw = (parameters as Record<string, unknown>).threshold;
    if (raw !== undefined && raw !== null) {
      threshold = parseNumber(() => (typeof raw === 'number' ? String(raw) : JSON.stringify(raw)), HF_THRESHOLD);
    }
  }
  return { image: decodeBase64Image(inputs), threshold };
}

export function huggingFaceDetections(detections: readonly Detection[]): HuggingFaceDetection[] {
  return detections.map((d) => ({
    label: d.label,
    score: d.score,
    box: { xmin: d.box.xmin, ymin: d.box.ymin, xmax: d.box.xmax, ymax: d.box.ymax },
  }));
}

/** `POST /models/{model}`, to mount on the app's root. */
export function huggingFaceRoutes(context: RouteContext): Router {
  const router = express.Router();
  router.post(
    '/models/:model',
    useErrorStyle('message'),
    context.refuseWhileDraining,
    context.requireKey,
    async (req: Request, res: Response) => {
      const endpoint = context.catalog.resolve(String(req.params.model));
      const signal = context.signal(res);
      context.admit(res);
      const body = await readRawBody(req, { maxBodyBytes: context.config.maxBodyBytes, signal });
      const { image, threshold } = parseHuggingFaceBody(body, isJson(req, body));
      const scoreThreshold = threshold ?? context.config.scoreThreshold;
      const options = {
        ...(scoreThreshold === undefined ? {} : { scoreThreshold }),
        ...(context.config.maxDetections === undefined ? {} : { maxDetections: context.config.maxDetections }),
      };
      const { result } = await endpoint.detect(image, options, signal);
      res.status(200).json(huggingFaceDetections(result.detections));
    },
  );
  return router;
}
