/**
 * Every route of the app: path, methods and error style, in one list. It drives the 405 answers
 * (app.ts) and the paths of the OpenAPI document (openapi.ts has one operation per route and
 * method, which the compiler checks against this list); test/server checks that the app answers
 * every route and method of it.
 */
import type { RouteSpec } from './context';
import { DEEPSTACK_ROUTES } from './deepstack';
import { HUGGINGFACE_ROUTES } from './huggingface';
import { KSERVE_ROUTES } from './kserve';
import { REPOSITORY_ROUTES } from './repository';

export const ROUTES = [
  { path: '/', methods: ['GET'] },
  { path: '/v1/detect', methods: ['POST'] },
  ...DEEPSTACK_ROUTES,
  ...HUGGINGFACE_ROUTES,
  ...KSERVE_ROUTES,
  { path: '/v1/models', methods: ['GET'] },
  { path: '/healthz', methods: ['GET'] },
  { path: '/readyz', methods: ['GET'] },
  { path: '/metrics', methods: ['GET'] },
  { path: '/openapi.json', methods: ['GET'] },
  ...REPOSITORY_ROUTES,
] as const satisfies readonly RouteSpec[];

export type Route = (typeof ROUTES)[number];

/** The OpenAPI form of an Express path: `/models/:model` → `/models/{model}`. */
export function openApiPath(path: string): string {
  return path.replace(/:(\w+)/g, '{$1}');
}
