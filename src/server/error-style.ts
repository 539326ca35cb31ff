/**
 * Each protocol answers errors in its own shape: the native API `{"error": {code, message}}`,
 * DeepStack / CodeProject.AI `{"success": false, "error", "code"}`, Hugging Face and KServe v2
 * `{"error": "message"}`, Triton's repository API `{"error": "message", "code": "CODE"}`. A route marks
 * its style on the response before anything can fail; the app's one error handler reads it.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { errorBody, type HttpError } from './errors';

export type ErrorStyle = 'native' | 'deepstack' | 'message' | 'triton';

interface StyleLocals {
  errorStyle?: ErrorStyle;
}

/** Middleware: errors of this route use `style`. */
export function useErrorStyle(style: ErrorStyle): RequestHandler {
  return (_req: Request, res: Response, next: NextFunction): void => {
    (res.locals as StyleLocals).errorStyle = style;
    next();
  };
}

/** The error body for `err` in the style the route chose (native when none). */
export function styledErrorBody(res: Response, err: HttpError): unknown {
  const style = (res.locals as StyleLocals).errorStyle ?? 'native';
  if (style === 'deepstack') return { success: false, error: err.message, code: err.status };
  if (style === 'message') return { error: err.message };
  if (style === 'triton') return { error: err.message, code: err.code };
  return errorBody(err);
}
