/**
 * Triton's model repository API (https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_model_repository.md)
 * over a ModelRepository: POST /v2/repository/index (rescan, then list), POST
 * /v2/repository/models/{m}/load and …/unload. Admin operations: behind the API keys when keys
 * are configured. Errors use Triton's shape with the server's code, `{"error": "message", "code":
 * "CODE"}`, with the status of the server's error table. An app serving one detector (no
 * repository) has the routes too: after the key check they answer 404 in that shape.
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { useErrorStyle } from '../error-style';
import { HttpError } from '../errors';
import type { ModelRepository } from '../model-repository';
import type { RouteSpec } from './context';

export const REPOSITORY_ROUTES = [
  { path: '/v2/repository/index', methods: ['POST'], errorStyle: 'triton' },
  { path: '/v2/repository/models/:model/load', methods: ['POST'], errorStyle: 'triton' },
  { path: '/v2/repository/models/:model/unload', methods: ['POST'], errorStyle: 'triton' },
] as const satisfies readonly RouteSpec[];

function readyOnly(body: unknown): boolean {
  // no body (or an empty one, parsed as {}) lists every model; JSON null is not an object
  if (body === undefined || (typeof body === 'object' && body !== null && !Array.isArray(body) && Object.keys(body).length === 0))
    return false;
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new HttpError('INVALID_PARAMETER', 'the index request body must be a JSON object such as {"ready": true}');
  const ready = (body as { ready?: unknown }).ready;
  if (ready === undefined) return false;
  if (typeof ready !== 'boolean') throw new HttpError('INVALID_PARAMETER', `'ready' must be true or false, got ${JSON.stringify(ready)}`);
  return ready;
}

/** The index body's limit; a larger one is 413 BODY_TOO_LARGE. */
const INDEX_BODY_LIMIT_BYTES = 16 * 1024;

export function registerRepositoryRoutes(
  app: express.Express,
  repository: ModelRepository | undefined,
  guards: { refuseWhileDraining: RequestHandler; requireKey: RequestHandler },
): void {
  const style = useErrorStyle('triton');
  const { refuseWhileDraining, requireKey } = guards;
  if (repository === undefined) {
    // an app serving one detector: the routes exist (no 405), but there is nothing to manage
    for (const route of REPOSITORY_ROUTES) {
      app.post(route.path, style, refuseWhileDraining, requireKey, () => {
        throw new HttpError(
          'NOT_FOUND',
          'this server serves no model repository ' +
            '(it was created with one detector; cpwc-detect serve --model or --model-repository has one)',
        );
      });
    }
    return;
  }
  const json = express.json({ limit: INDEX_BODY_LIMIT_BYTES, strict: false, type: () => true });
  const body: RequestHandler = (req: Request, res: Response, next: NextFunction) => {
    json(req, res, (err?: unknown) => {
      if (err === undefined) next();
      else if (typeof err === 'object' && err !== null && (err as { status?: unknown }).status === 413) {
        next(
          new HttpError('BODY_TOO_LARGE', `the index request body is larger than this server accepts (${INDEX_BODY_LIMIT_BYTES} bytes)`),
        );
      } else next(new HttpError('BAD_REQUEST', 'the request body must be JSON, e.g. {"ready": true}'));
    });
  };

  app.post('/v2/repository/index', style, refuseWhileDraining, requireKey, body, async (req: Request, res: Response) => {
    const rows = await repository.index(readyOnly(req.body));
    res.status(200).json(rows);
  });
  app.post('/v2/repository/models/:model/load', style, refuseWhileDraining, requireKey, async (req: Request, res: Response) => {
    const status = await repository.load(String(req.params.model));
    res.status(200).json(status);
  });
  app.post('/v2/repository/models/:model/unload', style, refuseWhileDraining, requireKey, async (req: Request, res: Response) => {
    const status = await repository.unload(String(req.params.model));
    res.status(200).json(status);
  });
}
