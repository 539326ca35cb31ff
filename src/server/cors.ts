/**
 * CORS for browser clients (`--cors-origins`, off by default). A request from an allowed origin
 * gets `Access-Control-Allow-Origin` on every answer, errors included; a preflight (OPTIONS with
 * Access-Control-Request-Method) from one is answered 204 here, before routing. Requests from
 * other origins are served as without CORS: the browser withholds the answer.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';

const ALLOWED_METHODS = 'GET, HEAD, POST';
const DEFAULT_ALLOWED_HEADERS = 'Authorization, Content-Type, Accept, Inference-Header-Content-Length';
/** Response headers a browser script may read. */
const EXPOSED_HEADERS = 'X-Request-Id, X-Detections, Retry-After, WWW-Authenticate, Inference-Header-Content-Length';
const PREFLIGHT_MAX_AGE_S = '600';

/** Middleware for `origins` (`*` = any); undefined when CORS is off (no origins). */
export function createCors(origins: readonly string[]): RequestHandler | undefined {
  if (origins.length === 0) return undefined;
  const anyOrigin = origins.includes('*');
  const allowed = new Set(origins.map((o) => o.toLowerCase()));
  return (req: Request, res: Response, next: NextFunction): void => {
    const origin = req.headers.origin;
    if (origin === undefined) {
      next();
      return;
    }
    res.vary('Origin');
    if (!anyOrigin && !allowed.has(origin.toLowerCase())) {
      next();
      return;
    }
    res.setHeader('Access-Control-Allow-Origin', anyOrigin ? '*' : origin);
    res.setHeader('Access-Control-Expose-Headers', EXPOSED_HEADERS);
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
      const requested = req.headers['access-control-request-headers'];
      res.setHeader('Access-Control-Allow-Methods', ALLOWED_METHODS);
      res.setHeader(
        'Access-Control-Allow-Headers',
        typeof requested === 'string' && requested.trim() !== '' ? requested : DEFAULT_ALLOWED_HEADERS,
      );
      res.setHeader('Access-Control-Max-Age', PREFLIGHT_MAX_AGE_S);
      res.vary('Access-Control-Request-Headers');
      res.status(204).end();
      return;
    }
    next();
  };
}
