/**
 * DeepStack / CodeProject.AI routes: what Home Assistant (deepstack-python), Frigate's deepstack
 * detector, Blue Iris, Agent DVR and node-red-contrib-deepstack call. Answers carry DeepStack's
 * fields and CodeProject.AI's; errors are `{"success": false, "error", "code"}`.
 */
import type { Request, Response, Router } from 'express';
import express from 'express';
import type { Detection } from '../../detection/types';
import { bearerToken } from '../auth';
import { readImageUpload, type ImageUpload } from '../body';
import { useErrorStyle } from '../error-style';
import { HttpError } from '../errors';
import { MIN_CONFIDENCE } from '../parameters';
import { paramSource, parseNumber, type ParamSource } from '../request-params';
import { SERVER_VERSION, versionParts } from '../version';
import type { RouteContext, RouteSpec } from './context';

/** The slowest upload accepted while its API key (inside the body) is still unchecked. */
const UNVERIFIED_UPLOAD_MIN_BYTES_PER_SECOND = 16 * 1024;
const MODULE_ID = 'cpwc-detect';
const MODULE_NAME = 'cpwc-detect Faster R-CNN';

export const DEEPSTACK_ROUTES = [
  { path: '/v1/vision/detection', methods: ['POST'], errorStyle: 'deepstack' },
  { path: '/v1/vision/custom/list', methods: ['POST'], errorStyle: 'deepstack' },
  { path: '/v1/vision/custom/:model', methods: ['POST'], errorStyle: 'deepstack' },
  { path: '/v1/status/ping', methods: ['GET'], errorStyle: 'deepstack' },
  { path: '/v1/status/updateavailable', methods: ['GET'], errorStyle: 'deepstack' },
] as const satisfies readonly RouteSpec[];

export interface DeepStackPrediction {
  label: string;
  confidence: number;
  x_min: number;
  y_min: number;
  x_max: number;
  y_max: number;
}

/**
 * Detections as DeepStack predictions: best first, labels lower-case, integer pixel coordinates
 * (rounded, as DeepStack's), at most `cap` of them.
 */
export function deepstackPredictions(detections: readonly Detection[], cap: number | undefined): DeepStackPrediction[] {
  const sorted = [...detections].sort((a, b) => b.score - a.score);
  return sorted.slice(0, cap ?? sorted.length).map((d) => ({
    label: d.label.toLowerCase(),
    confidence: d.score,
    x_min: Math.round(d.box.xmin),
    y_min: Math.round(d.box.ymin),
    x_max: Math.round(d.box.xmax),
    y_max: Math.round(d.box.ymax),
  }));
}

/** CodeProject.AI's `message`: "Found circle, square (2)". */
export function summarize(predictions: readonly DeepStackPrediction[]): string {
  if (predictions.length === 0) return 'No objects found';
  const counts = new Map<string, number>();
  for (const p of predictions) counts.set(p.label, (counts.get(p.label) ?? 0) + 1);
  return `Found ${[...counts].map(([label, n]) => (n > 1 ? `${label} (${n})` : label)).join(', ')}`;
}

/** DeepStack's key check: the Bearer header, else the `api_key` form field or query parameter. */
function checkKey(context: RouteContext, bearerAccepted: boolean, source: ParamSource): void {
  if (!bearerAccepted && !context.keys.accepts(source('api_key'))) throw new HttpError('UNAUTHORIZED', 'Incorrect api key');
}

/**
 * Reads the upload of a DeepStack request. A key known before the body (Bearer header, or a right
 * `?api_key=`) is admitted as any detection; a key inside the body waits in a pool of its own under
 * a minimum transfer rate, and joins the detection requests only once its key is checked, so
 * unauthenticated uploads cannot take the places of authenticated work.
 */
async function readKeyedUpload(
  context: RouteContext,
  req: Request,
  res: Response,
  signal: AbortSignal,
  admitted: boolean,
  imageOptional = false,
): Promise<{ upload: ImageUpload; source: ParamSource }> {
  const bearerAccepted = checkBearer(context, req);
  const queryKey = req.query.api_key;
  const keyKnown = bearerAccepted || (typeof queryKey === 'string' && context.keys.accepts(queryKey));
  const releaseUnverified = keyKnown ? undefined : context.admitUnverified(res);
  if (releaseUnverified === undefined && admitted) context.admit(res);
  const minBytesPerSecond = releaseUnverified === undefined ? undefined : UNVERIFIED_UPLOAD_MIN_BYTES_PER_SECOND;
  const upload = await readImageUpload(req, { maxBodyBytes: context.config.maxBodyBytes, signal, minBytesPerSecond, imageOptional });
  const source = paramSource(req.query, upload.fields);
  checkKey(context, keyKnown, source);
  if (releaseUnverified !== undefined) {
    releaseUnverified();
    if (admitted) context.admit(res);
  }
  return { upload, source };
}

/** A wrong Authorization header fails before the upload is read; returns whether it was accepted. */
function checkBearer(context: RouteContext, req: Request): boolean {
  const bearer = bearerToken(req.headers);
  const accepted = context.keys.open || context.keys.accepts(bearer);
  if (!accepted && bearer !== undefined) throw new HttpError('UNAUTHORIZED', 'Incorrect api key');
  return accepted;
}

function codeProjectFields(command: string, analysisStarted: number): Record<string, string | number | boolean> {
  return {
    command,
    moduleId: MODULE_ID,
    moduleName: MODULE_NAME,
    executionProvider: 'CPU',
    canUseGPU: false,
    inferenceDevice: 'CPU',
    analysisRoundTripMs: Math.round(performance.now() - analysisStarted),
    processedBy: 'localhost',
    timestampUTC: new Date().toUTCString(),
  };
}

async function detect(context: RouteContext, req: Request, res: Response, command: 'detect' | 'custom', modelName?: string): Promise<void> {
  const received = performance.now();
  const endpoint = context.catalog.resolve(modelName);
  const signal = context.signal(res);
  const { upload, source } = await readKeyedUpload(context, req, res, signal, true);
  const minConfidence = parseNumber(source, MIN_CONFIDENCE) ?? MIN_CONFIDENCE.default;
  const started = performance.now();
  const cap = context.config.deepstackMaxPredictions;
  const { result } = await endpoint.detect(
    upload.image,
    cap === undefined ? { scoreThreshold: minConfidence } : { scoreThreshold: minConfidence, maxDetections: cap },
    signal,
  );
  const predictions = deepstackPredictions(result.detections, cap);
  res.status(200).json({
    success: true,
    message: summarize(predictions),
    count: predictions.length,
    predictions,
    duration: result.timings_ms.total,
    inferenceMs: Math.round(result.timings_ms.total),
    processMs: Math.round(performance.now() - started),
    ...codeProjectFields(command, received),
    code: 200,
    requestId: String(req.id),
  });
}

async function listModels(context: RouteContext, req: Request, res: Response): Promise<void> {
  const received = performance.now();
  await readKeyedUpload(context, req, res, context.signal(res), false, true);
  const models = context.catalog.names();
  res.status(200).json({ success: true, models, message: `${models.length} custom models`, ...codeProjectFields('list', received) });
}

function updateAvailable(_req: Request, res: Response): void {
  const version = { ...versionParts(SERVER_VERSION), preRelease: null, securityUpdate: false, build: 0, file: null, releaseNotes: null };
  res.status(200).json({
    success: true,
    message: 'This server does not check for updates',
    version,
    current: version,
    latest: version,
    updateAvailable: false,
  });
}

/** The DeepStack / CodeProject.AI routes, to mount on the app's root. */
export function deepstackRoutes(context: RouteContext): Router {
  const router = express.Router();
  const style = useErrorStyle('deepstack');
  router.post('/v1/vision/detection', style, context.refuseWhileDraining, (req: Request, res: Response) =>
    detect(context, req, res, 'detect'),
  );
  router.post('/v1/vision/custom/list', style, (req: Request, res: Response) => listModels(context, req, res));
  router.post('/v1/vision/custom/:model', style, context.refuseWhileDraining, (req: Request, res: Response) =>
    detect(context, req, res, 'custom', String(req.params.model)),
  );
  router.get('/v1/status/ping', (_req: Request, res: Response) => {
    res.status(200).json({ success: true });
  });
  router.get('/v1/status/updateavailable', updateAvailable);
  return router;
}
