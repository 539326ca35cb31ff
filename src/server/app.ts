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
import { createCors } from './cors';
import { styledErrorBody, useErrorStyle } from './error-style';
import { HttpError, toHttpError } from './errors';
import { InferenceService } from './inference';
import { createHttpLogger } from './logging';
import { createMetrics, type ServerMetrics } from './metrics';
import type { ServedDetector, ServedModel } from './served-model';
import { singleModelCatalog, type ModelCatalog } from './model-catalog';
import type { ModelRepository } from './model-repository';
import { buildOpenApi } from './openapi';
import { paramSource, parseNativeParams } from './request-params';
import type { RouteContext, RouteSpec } from './routes/context';
import { deepstackRoutes } from './routes/deepstack';
import { huggingFaceRoutes } from './routes/huggingface';
import { kserveRoutes } from './routes/kserve';
import { ROUTES } from './routes/table';
import { SERVER_VERSION } from './version';
import { registerRepositoryRoutes } from './routes/repository';

export type RenderImage = (image: Uint8Array, detections: readonly Detection[], format: 'png' | 'jpeg') => Promise<Uint8Array>;

export interface AppOptions {
  /** The one model to serve; or `repository`. */
  detector?: ServedDetector;
  /**
   * Builds the model repository the server answers from (--model-repository, --model), on the
   * app's shared inference pool; warmUp() starts it.
   */
  repository?: (shared: { inference: InferenceService; metrics: ServerMetrics; logger: Logger }) => ModelRepository;
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
  catalog: ModelCatalog;
  /** The model repository, when the app serves one. */
  repository: ModelRepository | undefined;
  /** One inference on a generated image (with a repository: the default model loaded and warm), then the app reports ready. */
  warmUp(): Promise<void>;
}

const QUIET_PATHS = ['/healthz', '/readyz', '/metrics'];
/** Requests refused or dropped for load or lifecycle reasons, counted in cpwc_rejected_requests_total. */
const SHED_CODES: ReadonlySet<string> = new Set(['QUEUE_FULL', 'DEADLINE_EXCEEDED', 'CLIENT_CLOSED', 'SHUTTING_DOWN', 'UPLOAD_TOO_SLOW']);
/**
 * An error answered before the body was read (401, 503 QUEUE_FULL…) keeps the connection when the
 * rest of the body is at most this: draining a photo is cheaper than a client reconnecting after
 * every refusal. Larger or chunked bodies close the connection.
 */
const DRAIN_UNREAD_BODY_BYTES = 1024 * 1024;

interface AppLocals {
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

export function createApp(options: AppOptions): DetectionApp {
  const { detector, config, logger } = options;
  const metrics = createMetrics({ collectProcessMetrics: options.processMetrics ?? true });
  const inference = new InferenceService(metrics, { concurrency: config.concurrency, queueSize: config.queueSize });
  const lifecycle = new Lifecycle();
  const keys = new ApiKeys(config.apiKeys);
  const demoPage = loadDemoPage();
  const repository = options.repository?.({ inference, metrics, logger });
  // invariant: the caller's code chooses one (cpwc-detect serve always passes a repository)
  if ((repository === undefined) === (detector === undefined)) throw new Error('createApp: give exactly one of detector and repository');
  const catalog: ModelCatalog = repository ?? singleModelCatalog(detector as ServedDetector, inference, options.modelAliases ?? []);
  // the document describes the default model; rebuilt when a reload replaces it
  let openapiFor: { model: ServedModel; text: string } | undefined;
  const openapi = (): string => {
    const model = catalog.resolve().model;
    if (openapiFor?.model !== model) openapiFor = { model, text: JSON.stringify(buildOpenApi(model, config)) };
    return openapiFor.text;
  };
  const nativeDefaults = { scoreThreshold: config.scoreThreshold, maxDetections: config.maxDetections };

  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');

  app.use(createHttpLogger(logger, QUIET_PATHS));
  const cors = createCors(config.corsOrigins);
  if (cors !== undefined) app.use(cors);

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

  // ---- detection ----------------------------------------------------------------------------

  /** Admission before the body is read; the place is given back when the response is over. */
  const admit = (res: Response): void => {
    const release = inference.admit();
    res.once('close', release);
  };

  app.post('/v1/detect', refuseWhileDraining, requireKey, async (req: Request, res: Response) => {
    // an unknown ?model= fails before the upload is read; a form field `model` once it is
    const queryModel = typeof req.query.model === 'string' ? req.query.model : undefined;
    if (queryModel !== undefined) catalog.resolve(queryModel);
    admit(res);
    const signal = requestSignal(res, config.requestTimeoutMs);
    const upload = await readImageUpload(req, { maxBodyBytes: config.maxBodyBytes, signal });
    const endpoint = catalog.resolve(queryModel ?? upload.fields.get('model'));
    const params = parseNativeParams(paramSource(req.query, upload.fields), endpoint.model.classes, nativeDefaults);
    const render = options.render === undefined ? undefined : (params.render ?? negotiatedRender(req));
    const { result, queueMs } = await endpoint.detect(upload.image, params.options, signal);
    if (render !== undefined && options.render !== undefined) {
      const draw = options.render;
      // the second decode, the drawing and the encode are bounded like inference
      const image = await inference.runInSlot(() => draw(upload.image, result.detections, render), signal);
      res
        .status(200)
        .type(render === 'png' ? 'image/png' : 'image/jpeg')
        .setHeader('X-Detections', String(result.detections.length));
      res.end(Buffer.from(image.buffer, image.byteOffset, image.byteLength));
      return;
    }
    res.status(200).json({
      model: endpoint.name,
      width: result.width,
      height: result.height,
      detections: result.detections,
      timings_ms: { ...result.timings_ms, queue: queueMs },
    });
  });

  const context: RouteContext = {
    catalog,
    config,
    keys,
    ready: () => lifecycle.phase === 'ready',
    admit,
    admitUnverified: (res: Response) => {
      const release = inference.admitUnverified();
      res.once('close', release);
      return release;
    },
    signal: (res: Response) => requestSignal(res, config.requestTimeoutMs),
    refuseWhileDraining,
    requireKey,
  };
  app.use(deepstackRoutes(context));
  app.use(huggingFaceRoutes(context));
  app.use(kserveRoutes(context, SERVER_VERSION));

  // ---- information and operations -----------------------------------------------------------

  app.get('/v1/models', requireKey, (_req: Request, res: Response) => {
    // metadata of every model as before, plus its state; `models` keeps the ones that answer
    const statuses = catalog.list();
    const models = statuses
      .filter((s) => s.metadata !== null)
      .map((s) => ({ ...s.metadata, name: s.name, state: s.state, error: s.error, default: s.default }));
    res.status(200).json({ default: catalog.defaultName, models, repository: statuses });
  });
  app.get('/', (_req: Request, res: Response) => {
    res
      .status(200)
      .type('html')
      .setHeader(
        'Content-Security-Policy',
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src blob: data:; " +
          "connect-src 'self'; base-uri 'none'; form-action 'none'",
      )
      .send(demoPage);
  });
  app.get('/healthz', (_req: Request, res: Response) => {
    res.status(200).json({ status: 'alive' });
  });
  app.get('/readyz', (_req: Request, res: Response) => {
    const modelReady = lifecycle.phase !== 'ready' || catalog.defaultReady();
    const ready = lifecycle.phase === 'ready' && modelReady;
    const defaultName = repository === undefined || lifecycle.phase !== 'starting' ? catalog.defaultName : null;
    const body: Record<string, unknown> = { status: modelReady ? lifecycle.phase : 'default_model_unavailable', model: defaultName };
    if (!modelReady) body.reason = `the default model '${catalog.defaultName}' is not loaded`;
    res.status(ready ? 200 : 503).json(body);
  });
  app.get(
    '/metrics',
    (req: Request, res: Response, next: NextFunction) => {
      if (config.metricsAuth) requireKey(req, res, next);
      else next();
    },
    async (_req: Request, res: Response) => {
      const body = await metrics.registry.metrics();
      res.status(200).type(metrics.registry.contentType).send(body);
    },
  );
  app.get('/openapi.json', (_req: Request, res: Response) => {
    res.status(200).type('application/json').send(openapi());
  });

  registerRepositoryRoutes(app, repository, { refuseWhileDraining, requireKey });

  // ---- everything else ----------------------------------------------------------------------

  // every method a route of routes/table.ts does not declare: 405 with Allow
  const routes: readonly RouteSpec[] = ROUTES;
  for (const route of routes) {
    const allow = route.methods.includes('GET') ? [...route.methods, 'HEAD'] : route.methods;
    app.all(route.path, useErrorStyle(route.errorStyle ?? 'native'), (req: Request, _res: Response, next: NextFunction) => {
      next(
        new HttpError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${route.path}; use ${allow.join(', ')}`, {
          headers: { Allow: allow.join(', ') },
        }),
      );
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
    res.status(httpError.status).json(styledErrorBody(res, httpError));
  });

  return {
    app,
    inference,
    metrics,
    lifecycle,
    catalog,
    repository,
    async warmUp(): Promise<void> {
      if (repository !== undefined) {
        await repository.start();
        logger.info({ repository: repository.location, default: repository.defaultName }, 'default model loaded and warm');
      } else {
        const result = await inference.warmUp(detector as ServedDetector);
        logger.info({ timings_ms: result.timings_ms }, 'warm-up inference done');
      }
      if (lifecycle.phase === 'starting') lifecycle.phase = 'ready';
    },
  };
}
