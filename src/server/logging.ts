/**
 * Structured logs (pino, one JSON line per event) and the per-request access log (pino-http):
 * request id, method, route, status, latency, error code. Image bytes are never logged (bodies
 * are not serialized at all); the Authorization header and api_key values are redacted.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import pino, { type DestinationStream, type Logger } from 'pino';
import { pinoHttp, type HttpLogger } from 'pino-http';
import type { LogLevel } from './config';

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'cpwc-detect' },
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', '*.api_key', 'api_key'], censor: '[redacted]' },
    },
    destination,
  );
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The client's X-Request-Id when it is a sane token, else a fresh UUID. Echoed back. */
export function requestId(req: IncomingMessage, res: ServerResponse): string {
  const given = req.headers['x-request-id'];
  const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
  res.setHeader('X-Request-Id', id);
  return id;
}

const SECRET_PARAMS: ReadonlySet<string> = new Set(['api_key', 'apikey', 'key', 'token']);

function decodedName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' ')).toLowerCase();
  } catch {
    return name.toLowerCase();
  }
}

/**
 * The URL with the values of secret query parameters replaced. Names are compared after
 * percent-decoding, as the query parser decodes them: `?api%5Fkey=K` is redacted like `?api_key=K`.
 */
export function redactUrl(url: string): string {
  const question = url.indexOf('?');
  if (question < 0) return url;
  const pairs = url
    .slice(question + 1)
    .split('&')
    .map((pair) => {
      const equals = pair.indexOf('=');
      const name = equals < 0 ? pair : pair.slice(0, equals);
      return SECRET_PARAMS.has(decodedName(name)) && equals >= 0 ? `${name}=[redacted]` : pair;
    });
  return `${url.slice(0, question + 1)}${pairs.join('&')}`;
}

interface LocalsCarrier {
  locals?: { errorCode?: string; route?: string };
}

/** The path of a request target, without its query string. */
function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

export function createHttpLogger(logger: Logger, quietPaths: readonly string[]): HttpLogger {
  return pinoHttp({
    logger,
    genReqId: requestId,
    autoLogging: { ignore: (req) => quietPaths.includes(pathOf(req.url ?? '')) },
    serializers: {
      req: (req: { id: unknown; method: string; url: string; remoteAddress?: string; headers: Record<string, unknown> }) => ({
        id: req.id,
        method: req.method,
        url: redactUrl(req.url),
        remoteAddress: req.remoteAddress,
        contentType: req.headers['content-type'],
        contentLength: req.headers['content-length'],
        userAgent: req.headers['user-agent'],
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
    customLogLevel: (_req, res, err) => {
      if (err !== undefined || res.statusCode >= 500) return 'error';
      return 'info';
    },
    customSuccessObject: (_req, res, value: Record<string, unknown>) => {
      const locals = (res as ServerResponse & LocalsCarrier).locals;
      return {
        ...value,
        route: locals?.route,
        errorCode: locals?.errorCode,
        completed: res.writableFinished,
      };
    },
    customErrorObject: (_req, res, _err, value: Record<string, unknown>) => {
      const locals = (res as ServerResponse & LocalsCarrier).locals;
      return { ...value, route: locals?.route, errorCode: locals?.errorCode };
    },
    customSuccessMessage: (req, res, ms) =>
      `${req.method} ${redactUrl(req.url ?? '')} ${res.writableFinished ? res.statusCode : 'closed by client'} ${ms}ms`,
    customErrorMessage: (req, res) => `${req.method} ${redactUrl(req.url ?? '')} ${res.statusCode} failed`,
  });
}
