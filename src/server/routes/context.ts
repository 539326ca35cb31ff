/**
 * What a protocol's routes get from the app: the models (only through the catalog), the config,
 * the API keys and the request helpers every detection route shares. Nothing else, so each
 * protocol module (deepstack.ts, huggingface.ts, kserve.ts) can be mounted on any app.
 */
import type { RequestHandler, Response } from 'express';
import type { ApiKeys } from '../auth';
import type { ServerConfig } from '../config';
import type { ErrorStyle } from '../error-style';
import type { ModelCatalog } from '../model-catalog';

export type Method = 'GET' | 'POST';

/** One route and its methods (routes/table.ts: drives 405 answers and the OpenAPI document's paths). */
export interface RouteSpec {
  /** Express's form: `/v1/vision/custom/:model`. */
  path: string;
  methods: readonly Method[];
  /** The shape of this route's errors, its 405 included; native when absent. */
  errorStyle?: ErrorStyle;
}

export interface RouteContext {
  catalog: ModelCatalog;
  config: ServerConfig;
  keys: ApiKeys;
  /** Whether the server has loaded and warmed up its model and is not draining. */
  ready(): boolean;
  /** Admission before the body is read (QUEUE_FULL when full); released when the response ends. */
  admit(res: Response): void;
  /**
   * Admission of an upload whose API key is inside the body, into a pool of its own (QUEUE_FULL
   * when full): returns the release, to call once the key is checked (also released when the
   * response ends). See docs/server.md, "API keys in the body".
   */
  admitUnverified(res: Response): () => void;
  /** The request's abort signal: client gone (CLIENT_CLOSED) or deadline passed (DEADLINE_EXCEEDED). */
  signal(res: Response): AbortSignal;
  /** 503 SHUTTING_DOWN while draining. */
  refuseWhileDraining: RequestHandler;
  /** 401 UNAUTHORIZED unless keys are off or `Authorization: Bearer KEY` carries a configured key. */
  requireKey: RequestHandler;
}
