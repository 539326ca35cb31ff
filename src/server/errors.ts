/**
 * The HTTP layer's coded errors: one table from code to status and default message.
 * Handlers throw `HttpError(code)` or let a library `DetectError` through; `toHttpError`
 * maps anything to a response. Nothing else in the server picks status codes.
 */
import { DETECT_ERROR_MESSAGES, DetectError, type DetectErrorCode } from '../detection/errors';

export type ServerErrorCode =
  | 'BODY_TOO_LARGE'
  | 'IMAGE_MISSING'
  | 'MULTIPART_INVALID'
  | 'MULTIPART_TOO_MANY_PARTS'
  | 'UPLOAD_TOO_SLOW'
  | 'INVALID_PARAMETER'
  | 'UNAUTHORIZED'
  | 'QUEUE_FULL'
  | 'NOT_READY'
  | 'SHUTTING_DOWN'
  | 'DEADLINE_EXCEEDED'
  | 'CLIENT_CLOSED'
  | 'NOT_FOUND'
  | 'MODEL_NOT_FOUND'
  | 'MODEL_NOT_READY'
  | 'MODEL_LOAD_FAILED'
  | 'MODEL_UNLOAD_REFUSED'
  | 'REPOSITORY_UNREADABLE'
  | 'METHOD_NOT_ALLOWED'
  | 'BAD_REQUEST'
  | 'INFER_REQUEST_INVALID'
  | 'BATCH_UNSUPPORTED'
  | 'INTERNAL';

export type ErrorCode = ServerErrorCode | DetectErrorCode;

interface ErrorSpec {
  status: number;
  message: string;
}

export const ERRORS: Readonly<Record<ErrorCode, ErrorSpec>> = {
  // library codes: the library's message (one source), the server adds the status
  IMAGE_EMPTY: { status: 400, message: DETECT_ERROR_MESSAGES.IMAGE_EMPTY },
  IMAGE_UNSUPPORTED_FORMAT: { status: 415, message: DETECT_ERROR_MESSAGES.IMAGE_UNSUPPORTED_FORMAT },
  IMAGE_DECODE_FAILED: { status: 400, message: DETECT_ERROR_MESSAGES.IMAGE_DECODE_FAILED },
  IMAGE_TOO_LARGE: { status: 413, message: DETECT_ERROR_MESSAGES.IMAGE_TOO_LARGE },
  INVALID_OPTION: { status: 400, message: DETECT_ERROR_MESSAGES.INVALID_OPTION },
  ABORTED: { status: 499, message: 'the client closed the request' },
  MODEL_INVALID: { status: 500, message: 'the model could not be used' },
  DETECTOR_CLOSED: { status: 503, message: 'the server is shutting down' },
  EXECUTION_PROVIDER_UNAVAILABLE: { status: 500, message: 'the model could not be used' },
  BODY_TOO_LARGE: { status: 413, message: 'the request body is larger than this server accepts' },
  UPLOAD_TOO_SLOW: { status: 408, message: 'the request body arrived too slowly' },
  IMAGE_MISSING: { status: 400, message: "no image: send it as the raw body or as the multipart field 'image'" },
  MULTIPART_INVALID: { status: 400, message: 'the multipart/form-data body is malformed' },
  MULTIPART_TOO_MANY_PARTS: { status: 413, message: 'the multipart/form-data body has more fields or parts than this server accepts' },
  INVALID_PARAMETER: { status: 400, message: 'a request parameter is invalid' },
  UNAUTHORIZED: { status: 401, message: 'a valid API key is required (Authorization: Bearer KEY)' },
  QUEUE_FULL: { status: 503, message: 'the server is busy: every inference slot and queue place is taken; retry later' },
  NOT_READY: { status: 503, message: 'the server is not ready' },
  SHUTTING_DOWN: { status: 503, message: 'the server is shutting down' },
  DEADLINE_EXCEEDED: { status: 504, message: 'the request did not complete within the server deadline' },
  CLIENT_CLOSED: { status: 499, message: 'the client closed the request' },
  NOT_FOUND: { status: 404, message: 'no such route' },
  MODEL_NOT_FOUND: { status: 404, message: 'no such model' },
  MODEL_NOT_READY: { status: 503, message: 'the model is loading or failed to load' },
  MODEL_LOAD_FAILED: {
    status: 400,
    message: 'the model failed to load (bad model.json, checksum mismatch or corrupt graph); a working version keeps answering',
  },
  MODEL_UNLOAD_REFUSED: { status: 409, message: 'the default model cannot be unloaded' },
  REPOSITORY_UNREADABLE: { status: 503, message: 'the model repository cannot be read' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed on this route' },
  BAD_REQUEST: { status: 400, message: 'the request is malformed' },
  INFER_REQUEST_INVALID: { status: 400, message: 'the KServe v2 inference request is malformed' },
  BATCH_UNSUPPORTED: { status: 400, message: 'one image per inference request: input IMAGE must have shape [1]' },
  INTERNAL: { status: 500, message: 'internal server error' },
};

export class HttpError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, message?: string, options?: { headers?: Record<string, string>; cause?: unknown }) {
    super(message ?? ERRORS[code].message, { cause: options?.cause });
    this.name = 'HttpError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.headers = options?.headers ?? {};
  }
}

function isDetectErrorCode(code: string): code is DetectErrorCode {
  return Object.hasOwn(ERRORS, code);
}

/** Express's own errors (e.g. a malformed URL) carry a 4xx `status`. */
function expressClientStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null || !('status' in err)) return undefined;
  const status = (err as { status: unknown }).status;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
}

/**
 * Maps any thrown value to an HttpError. Library errors keep their message (they describe the
 * input, never internals); anything unknown becomes INTERNAL with the generic message, so a 500
 * never carries a stack or an internal message to the client.
 */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof DetectError && isDetectErrorCode(err.code)) {
    if (err.code === 'MODEL_INVALID' || err.code === 'EXECUTION_PROVIDER_UNAVAILABLE')
      return new HttpError(err.code, undefined, { cause: err });
    return new HttpError(err.code, err.message, { cause: err });
  }
  const clientStatus = expressClientStatus(err);
  if (clientStatus === 413) return new HttpError('BODY_TOO_LARGE', undefined, { cause: err });
  if (clientStatus !== undefined) return new HttpError('BAD_REQUEST', undefined, { cause: err });
  return new HttpError('INTERNAL', undefined, { cause: err });
}

/** The JSON body of an error response on the native API. */
export function errorBody(err: HttpError): { error: { code: ErrorCode; message: string } } {
  return { error: { code: err.code, message: err.message } };
}
