/**
 * The Express app: a thin HTTP layer over a loaded detector. Everything it uses comes in
 * through `createApp` (detector, config, logger); nothing is global, so tests can run several.
 *
 * Request path of a detection: access log + request id → readiness/draining check → API key
 * (header, before the body is read) → body (streamed, limited) → parameters → a bounded
 * inference slot under the request's abort signal (client gone or deadline) → JSON or image.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ServerResponse } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { Detection } from '../detection/types';
import { ApiKeys, bearerToken } from './auth';
import { readImageUpload } from './body';
import type { ServerConfig } from './config';
import { HttpError, errorBody, toHttpError } from './errors';
import { InferenceService } from './inference';
import { createHttpLogger } from './logging';
import { createMetrics, type ServerMetrics } from './metrics';
import { describeModel, type ServedDetector } from './model';
import { singleModelCatalog } from './model-catalog';
import { buildOpenApi } from './openapi';
import { paramSource, parseNativeParams, parseUnitInterval } from './params';

export type RenderImage = (image: Uint8Array, detections: readonly Detection[], format: 'png' | 'jpeg') => Promise<Uint8Array>;

export interface AppOptions {
  detector: ServedDetector;
  config: ServerConfig;
  logger: Logger;
  /** Draws detections on the image (render=1); without it, render requests get JSON. */
  render?: RenderImage;
  /** Names accepted by /v1/vision/custom/{model} besides model.json's name (e.g. the directory name). */
  modelAliases?: readonly string[];
  /** Collect process-level default metrics (CPU, memory, event loop); default true. */
  processMetrics?: boolean;
}

export type Phase = 'starting' | 'ready' | 'draining';

export class Lifecycle {
  phase: Phase = 'starting';
  /**
   * While draining: new requests are still served (the drain delay after SIGTERM, while load
   * balancers stop sending). After it, detection requests get 503 SHUTTING_DOWN.
   */
  servingWhileDraining = false;
}

export interface DetectionApp {
  app: express.Express;
  inference: InferenceService;
  metrics: ServerMetrics;
  lifecycle: Lifecycle;
  /** One inference on a generated image, then the app reports ready. */
  warmUp(): Promise<void>;
}

/** Every route and its methods: drives 405 answers and is checked against the OpenAPI document. */
export const ROUTES: ReadonlyArray<{ path: string; methods: readonly string[] }> = [
  { path: '/', methods: ['GET'] },
  { path: '/v1/detect', methods: ['POST'] },
  { path: '/v1/vision/detection', methods: ['POST'] },
  { path: '/v1/vision/custom/:model', methods: ['POST'] },
  { path: '/v1/status/ping', methods: ['GET'] },
  { path: '/v1/models', methods: ['GET'] },
  { path: '/healthz', methods: ['GET'] },
  { path: '/readyz', methods: ['GET'] },
  { path: '/metrics', methods: ['GET'] },
  { path: '/openapi.json', methods: ['GET'] },
];

const QUIET_PATHS = ['/healthz', '/readyz', '/metrics'];
/** Requests refused or dropped for load or lifecycle reasons, counted in cpwc_rejected_requests_total. */
const SHED_CODES: ReadonlySet<string> = new Set(['QUEUE_FULL', 'DEADLINE_EXCEEDED', 'CLIENT_CLOSED', 'SHUTTING_DOWN', 'UPLOAD_TOO_SLOW']);
const DEEPSTACK_DEFAULT_MIN_CONFIDENCE = 0.45;
/** The slowest upload accepted while its API key (inside the body) is still unchecked. */
const UNVERIFIED_UPLOAD_MIN_BYTES_PER_SECOND = 16 * 1024;
/**
 * An error answered before the body was read (401, 503 QUEUE_FULL…) keeps the connection when the
 * rest of the body is at most this: draining a photo is cheaper than a client reconnecting after
 * every refusal. Larger or chunked bodies close the connection.
 */
const DRAIN_UNREAD_BODY_BYTES = 1024 * 1024;

interface AppLocals {
  /** Errors on this route use DeepStack's `{success: false, error}` shape. */
  deepstack?: boolean;
  errorCode?: string;
}

function locals(res: Response): AppLocals {
  return res.locals as AppLocals;
}

/**
 * An abort signal for one request: aborts with CLIENT_CLOSED when the connection closes before
 * the response is complete, and with DEADLINE_EXCEEDED when the deadline passes.
 */
function requestSignal(res: ServerResponse, timeoutMs: number): AbortSignal {
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort(new HttpError('DEADLINE_EXCEEDED', `the request did not complete within the server deadline (${timeoutMs} ms)`));
  }, timeoutMs);
  res.once('close', () => {
    clearTimeout(timer);
    if (!res.writableFinished) controller.abort(new HttpError('CLIENT_CLOSED'));
  });
  return controller.signal;
}

function loadDemoPage(): string {
  // src/server/public in development (ts-jest), dist/server/public after `npm run build`
  return readFileSync(path.join(__dirname, 'public', 'index.html'), 'utf8');
}

/** `Accept` prefers an image over JSON: render. Ties and wildcards keep JSON. */
function negotiatedRender(req: Request): 'png' | 'jpeg' | undefined {
  if (req.headers.accept === undefined) return undefined;
  const best = req.accepts(['application/json', 'image/png', 'image/jpeg']);
  if (best === 'image/png') return 'png';
  if (best === 'image/jpeg') return 'jpeg';
  return undefined;
}

function deepstackPredictions(detections: readonly Detection[]): Array<Record<string, string | number>> {
  return detections.map((d) => ({
    label: d.label,
    confidence: d.score,
    x_min: Math.round(d.box.xmin),
    y_min: Math.round(d.box.ymin),
    x_max: Math.round(d.box.xmax),
    y_max: Math.round(d.box.ymax),
  }));
}

function summarize(detections: readonly Detection[]): string {
  if (detections.length === 0) return 'No objects found';
  const counts = new Map<string, number>();
  for (const d of detections) counts.set(d.label, (counts.get(d.label) ?? 0) + 1);
  return `Found ${[...counts].map(([label, n]) => (n > 1 ? `${label} (${n})` : label)).join(', ')}`;
}

export function createApp(options: AppOptions): DetectionApp {
  const { detector, config, logger } = options;
  const model = detector.model;
  const metrics = createMetrics({ collectProcessMetrics: options.processMetrics ?? true });
  const inference = new InferenceService(detector, metrics, { concurrency: config.concurrency, queueSize: config.queueSize });
  const lifecycle = new Lifecycle();
  const keys = new ApiKeys(config.apiKeys);
  const demoPage = loadDemoPage();
  const openapi = JSON.stringify(buildOpenApi(model, config));
  const catalog = singleModelCatalog(model, inference, options.modelAliases ?? []);
  const nativeDefaults = { scoreThreshold: config.scoreThreshold, maxDetections: config.maxDetections };

  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');

  app.use(createHttpLogger(logger, QUIET_PATHS));

  // while draining, every answer ends its connection: keep-alive clients reconnect elsewhere
  app.use((_req: Request, res: Response, next: NextFunction) => {
    if (lifecycle.phase === 'draining') res.setHeader('Connection', 'close');
    next();
  });

  // request duration by route template and status; a request the client abandoned counts as 499
  app.use((req: Request, res: Response, next: NextFunction) => {
    const started = performance.now();
    res.once('close', () => {
      const route = typeof req.route?.path === 'string' ? req.route.path : 'unmatched';
      const status = res.writableFinished ? String(res.statusCode) : '499';
      metrics.httpRequestDuration.observe({ method: req.method, route, status }, (performance.now() - started) / 1000);
    });
    next();
  });

  const refuseWhileDraining = (_req: Request, _res: Response, next: NextFunction): void => {
    if (lifecycle.phase === 'draining' && !lifecycle.servingWhileDraining) {
      next(new HttpError('SHUTTING_DOWN', undefined, { headers: { Connection: 'close', 'Retry-After': '1' } }));
      return;
    }
    next();
  };

  const requireKey = (req: Request, _res: Response, next: NextFunction): void => {
    if (keys.open || keys.accepts(bearerToken(req.headers))) next();
    else next(new HttpError('UNAUTHORIZED', undefined, { headers: { 'WWW-Authenticate': 'Bearer' } }));
  };

  const markDeepstack = (_req: Request, res: Response, next: NextFunction): void => {
    locals(res).deepstack = true;
    next();
  };

  // ---- detection ----------------------------------------------------------------------------

  /** Admission before the body is read; the place is given back when the response is over. */
  const admit = (res: Response): void => {
    const release = inference.admit();
    res.once('close', release);
  };

  app.post('/v1/detect', refuseWhileDraining, requireKey, async (req: Request, res: Response) => {
    admit(res);
    const signal = requestSignal(res, config.requestTimeoutMs);
    const upload = await readImageUpload(req, { maxBodyBytes: config.maxBodyBytes, signal });
    const params = parseNativeParams(paramSource(req.query, upload.fields), model.classes, nativeDefaults);
    const render = options.render === undefined ? undefined : (params.render ?? negotiatedRender(req));
    const { result, queueMs } = await catalog.resolve().detect(upload.image, params.options, signal);
    if (render !== undefined && options.render !== undefined) {
      const draw = options.render;
      // the second decode, the drawing and the encode are bounded like inference
      const image = await inference.runInSlot(() => draw(upload.image, result.detections, render), signal);
      res.status(200).type(render === 'png' ? 'image/png' : 'image/jpeg').setHeader('X-Detections', String(result.detections.length));
      res.end(Buffer.from(image.buffer, image.byteOffset, image.byteLength));
      return;
    }
    res.status(200).json({
      model: model.name,
      width: result.width,
      height: result.height,
      detections: result.detections,
      timings_ms: { ...result.timings_ms, queue: queueMs },
    });
  });

  const deepstackDetect = async (req: Request, res: Response, modelName?: string): Promise<void> => {
    const endpoint = catalog.resolve(modelName);
    const signal = requestSignal(res, config.requestTimeoutMs);
    const bearer = bearerToken(req.headers);
    const bearerAccepted = keys.open || keys.accepts(bearer);
    // a wrong Authorization header fails before the upload is read
    if (!bearerAccepted && bearer !== undefined) throw new HttpError('UNAUTHORIZED', 'Incorrect api key');
    // the key is in the body: the upload waits in a pool of its own, under a minimum transfer
    // rate, and joins the detection requests only once its key is checked
    const queryKey = req.query.api_key;
    const keyKnown = bearerAccepted || (typeof queryKey === 'string' && keys.accepts(queryKey));
    const releaseUnverified = keyKnown ? undefined : inference.admitUnverified();
    if (releaseUnverified === undefined) admit(res);
    else res.once('close', releaseUnverified);
    const minBytesPerSecond = releaseUnverified === undefined ? undefined : UNVERIFIED_UPLOAD_MIN_BYTES_PER_SECOND;
    const upload = await readImageUpload(req, { maxBodyBytes: config.maxBodyBytes, signal, minBytesPerSecond });
    const source = paramSource(req.query, upload.fields);
    if (releaseUnverified !== undefined) {
      if (!keys.accepts(source('api_key'))) throw new HttpError('UNAUTHORIZED', 'Incorrect api key');
      releaseUnverified();
      admit(res);
    }
    const minConfidence = parseUnitInterval(source, 'min_confidence') ?? DEEPSTACK_DEFAULT_MIN_CONFIDENCE;
    const started = performance.now();
    const { result } = await endpoint.detect(upload.image, { scoreThreshold: minConfidence }, signal);
    res.status(200).json({
      success: true,
      message: summarize(result.detections),
      count: result.detections.length,
      predictions: deepstackPredictions(result.detections),
      duration: result.timings_ms.total,
      inferenceMs: Math.round(result.timings_ms.total),
      processMs: Math.round(performance.now() - started),
      code: 200,
      requestId: String(req.id),
    });
  };

  app.post('/v1/vision/detection', markDeepstack, refuseWhileDraining, (req: Request, res: Response) => deepstackDetect(req, res));
  app.post('/v1/vision/custom/:model', markDeepstack, refuseWhileDraining, async (req: Request, res: Response) => {
    await deepstackDetect(req, res, String(req.params.model));
  });
  app.get('/v1/status/ping', (_req: Request, res: Response) => {
    res.status(200).json({ success: true });
  });

  // ---- information and operations -----------------------------------------------------------

  app.get('/v1/models', requireKey, (_req: Request, res: Response) => {
    res.status(200).json({ models: [describeModel(model)] });
  });
  app.get('/', (_req: Request, res: Response) => {
    res
      .status(200)
      .type('html')
      .setHeader('Content-Security-Policy', "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'")
      .send(demoPage);
  });
  app.get('/healthz', (_req: Request, res: Response) => {
    res.status(200).json({ status: 'alive' });
  });
  app.get('/readyz', (_req: Request, res: Response) => {
    const ready = lifecycle.phase === 'ready';
    res.status(ready ? 200 : 503).json({ status: lifecycle.phase, model: model.name });
  });
  app.get('/metrics', (req: Request, res: Response, next: NextFunction) => {
    if (config.metricsAuth) requireKey(req, res, next);
    else next();
  }, async (_req: Request, res: Response) => {
    const body = await metrics.registry.metrics();
    res.status(200).type(metrics.registry.contentType).send(body);
  });
  app.get('/openapi.json', (_req: Request, res: Response) => {
    res.status(200).type('application/json').send(openapi);
  });

  // ---- everything else ----------------------------------------------------------------------

  for (const route of ROUTES) {
    const allow = route.methods.includes('GET') ? [...route.methods, 'HEAD'] : route.methods;
    app.all(route.path, (req: Request, _res: Response, next: NextFunction) => {
      next(new HttpError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${route.path}; use ${allow.join(', ')}`, { headers: { Allow: allow.join(', ') } }));
    });
  }
  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new HttpError('NOT_FOUND', `no route ${req.method} ${req.path}; see GET /openapi.json`));
  });

  // Express recognises an error handler by its four parameters
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const httpError = toHttpError(err);
    locals(res).errorCode = httpError.code;
    if (SHED_CODES.has(httpError.code)) metrics.rejectedRequests.inc({ reason: httpError.code });
    if (httpError.status >= 500 && httpError.code === 'INTERNAL') {
      // the stack goes to the log, never to the client
      res.err = err instanceof Error ? err : new Error(String(err));
    }
    if (res.headersSent || res.destroyed || httpError.code === 'CLIENT_CLOSED' || httpError.code === 'ABORTED') {
      if (!res.writableEnded) res.destroy();
      return;
    }
    for (const [name, value] of Object.entries(httpError.headers)) res.setHeader(name, value);
    // an unread upload must be drained before the connection can be reused: Node drains it after
    // the response; a large or unknown-length one is cut instead (the connection closes)
    if (!req.complete && !(Number(req.headers['content-length']) <= DRAIN_UNREAD_BODY_BYTES)) res.setHeader('Connection', 'close');
    if (httpError.code === 'UNAUTHORIZED' && !res.hasHeader('WWW-Authenticate')) res.setHeader('WWW-Authenticate', 'Bearer');
    const body = locals(res).deepstack === true ? { success: false, error: httpError.message, code: httpError.status } : errorBody(httpError);
    res.status(httpError.status).json(body);
  });

  return {
    app,
    inference,
    metrics,
    lifecycle,
    async warmUp(): Promise<void> {
      const result = await inference.warmUp();
      logger.info({ timings_ms: result.timings_ms }, 'warm-up inference done');
      if (lifecycle.phase === 'starting') lifecycle.phase = 'ready';
    },
  };
}
