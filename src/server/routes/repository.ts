/**
 * Triton's model repository API (https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_model_repository.md)
 * over a ModelRepository: POST /v2/repository/index (rescan, then list), POST
 * /v2/repository/models/{m}/load and …/unload. Admin operations: behind the API keys when keys
 * are configured. Errors use Triton's shape, `{"error": "message"}`, with the status of the
 * server's error table.
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { HttpError, toHttpError } from '../errors';
import type { ModelRepository } from '../model-repository';

export const REPOSITORY_ROUTES: ReadonlyArray<{ path: string; methods: readonly string[] }> = [
  { path: '/v2/repository/index', methods: ['POST'] },
  { path: '/v2/repository/models/:model/load', methods: ['POST'] },
  { path: '/v2/repository/models/:model/unload', methods: ['POST'] },
];

/** Answers a thrown error in Triton's shape; the app's error handler logs nothing more for it. */
function tritonHandler(handler: (req: Request, res: Response) => Promise<void>): RequestHandler {
  return async (req: Request, res: Response) => {
    try {
      await handler(req, res);
    } catch (err) {
      const httpError = toHttpError(err);
      (res.locals as { errorCode?: string }).errorCode = httpError.code;
      for (const [name, value] of Object.entries(httpError.headers)) res.setHeader(name, value);
      res.status(httpError.status).json({ error: httpError.message, code: httpError.code });
    }
  };
}

function readyOnly(body: unknown): boolean {
  if (body === undefined || body === null || (typeof body === 'object' && Object.keys(body).length === 0)) return false;
  if (typeof body !== 'object' || Array.isArray(body)) throw new HttpError('INVALID_PARAMETER', 'the index request body must be a JSON object such as {"ready": true}');
  const ready = (body as { ready?: unknown }).ready;
  if (ready === undefined) return false;
  if (typeof ready !== 'boolean') throw new HttpError('INVALID_PARAMETER', `'ready' must be true or false, got ${JSON.stringify(ready)}`);
  return ready;
}

export function registerRepositoryRoutes(
  app: express.Express,
  repository: ModelRepository,
  guards: { refuseWhileDraining: RequestHandler; requireKey: RequestHandler },
): void {
  const json = express.json({ limit: '16kb', strict: false, type: () => true });
  const body: RequestHandler = (req: Request, res: Response, next: NextFunction) => {
    json(req, res, (err?: unknown) => {
      if (err === undefined) next();
      else next(new HttpError('BAD_REQUEST', 'the request body must be JSON, e.g. {"ready": true}'));
    });
  };
  const { refuseWhileDraining, requireKey } = guards;

  app.post('/v2/repository/index', refuseWhileDraining, requireKey, body, tritonHandler(async (req, res) => {
    const rows = await repository.index(readyOnly(req.body));
    res.status(200).json(rows);
  }));
  app.post('/v2/repository/models/:model/load', refuseWhileDraining, requireKey, tritonHandler(async (req, res) => {
    const status = await repository.load(String(req.params.model));
    res.status(200).json(status);
  }));
  app.post('/v2/repository/models/:model/unload', refuseWhileDraining, requireKey, tritonHandler(async (req, res) => {
    const status = await repository.unload(String(req.params.model));
    res.status(200).json(status);
  }));
}
