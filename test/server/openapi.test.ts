/**
 * The OpenAPI document against the sources it is built from: the error table (every code a
 * response names exists and has that response's status), the route table's error styles, and the
 * parameter declarations that request validation uses (a documented bound or value is exactly
 * what the server accepts).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ERRORS, type ErrorCode } from '../../src/server/errors';
import { buildOpenApi } from '../../src/server/openapi';
import { parseNativeParams } from '../../src/server/request-params';
import type { RouteSpec } from '../../src/server/routes/context';
import { openApiPath, ROUTES } from '../../src/server/routes/table';
import type { ServedModel } from '../../src/server/served-model';
import { FIXTURE_MODEL, testConfig } from '../helpers/server';

interface Response {
  description: string;
  content?: Record<string, { schema: Record<string, unknown> }>;
}
interface Parameter {
  name: string;
  in: string;
  schema: { type: string; minimum?: number; maximum?: number; enum?: string[] };
}
interface Operation {
  parameters?: Parameter[];
  responses: Record<string, Response>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
}

const model = JSON.parse(readFileSync(path.join(FIXTURE_MODEL, 'model.json'), 'utf8')) as ServedModel;
const doc = buildOpenApi(model, testConfig({ apiKeys: ['openapi-test-key'] })) as unknown as Document;
const operations = Object.entries(doc.paths).flatMap(([p, item]) =>
  Object.entries(item).map(([method, operation]) => ({ where: `${method.toUpperCase()} ${p}`, operation })),
);

/** The codes a description names in parentheses: "(QUEUE_FULL, with Retry-After)", "(codes A, B)". */
function namedCodes(description: string): string[] {
  return [...description.matchAll(/\(([^)]*)\)/g)].flatMap((group) =>
    [...(group[1] ?? '').matchAll(/\b[A-Z][A-Z_]{2,}\b/g)].map((m) => m[0]),
  );
}

describe('the OpenAPI document', () => {
  it('names only codes of ERRORS in its error responses, each under its own status', () => {
    const wrong: string[] = [];
    let named = 0;
    for (const { where, operation } of operations) {
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) < 400) continue;
        for (const code of namedCodes(response.description)) {
          named++;
          if (!Object.hasOwn(ERRORS, code)) wrong.push(`${where} ${status}: ${code} is not a code`);
          else if (String(ERRORS[code as ErrorCode].status) !== status)
            wrong.push(`${where} ${status}: ${code} is ${ERRORS[code as ErrorCode].status}`);
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(named).toBeGreaterThan(100);
  });

  it("describes each route's errors in the route's error style", () => {
    const schemaOf: Record<string, unknown> = {
      native: { $ref: '#/components/schemas/Error' },
      deepstack: { $ref: '#/components/schemas/DeepStackError' },
      message: { $ref: '#/components/schemas/MessageError' },
      triton: { type: 'object', required: ['error'], properties: { error: { type: 'string' }, code: { type: 'string' } } },
    };
    const routes: readonly RouteSpec[] = ROUTES;
    const mismatched: string[] = [];
    for (const route of routes) {
      for (const method of route.methods) {
        const operation = doc.paths[openApiPath(route.path)]?.[method.toLowerCase()];
        for (const [status, response] of Object.entries(operation?.responses ?? {})) {
          const schema = response.content?.['application/json']?.schema;
          if (
            Number(status) >= 400 &&
            schema !== undefined &&
            JSON.stringify(schema) !== JSON.stringify(schemaOf[route.errorStyle ?? 'native'])
          )
            mismatched.push(`${method} ${route.path} ${status}`);
        }
      }
    }
    expect(mismatched).toEqual([]);
  });

  it("documents /v1/detect's bounds and values exactly as the server validates them", () => {
    const parameters = doc.paths['/v1/detect']?.post?.parameters ?? [];
    const accepts = (name: string, value: string): boolean => {
      try {
        parseNativeParams((asked) => (asked === name ? value : undefined), model.classes, {
          scoreThreshold: undefined,
          maxDetections: undefined,
        });
        return true;
      } catch (err) {
        expect(err).toMatchObject({ code: 'INVALID_PARAMETER' });
        return false;
      }
    };
    const numeric = parameters.filter((p) => p.schema.type === 'number' || p.schema.type === 'integer');
    expect(numeric.map((p) => p.name).sort()).toEqual(['max_detections', 'score_threshold']);
    for (const { name, schema } of numeric) {
      const { minimum, maximum } = schema as { minimum: number; maximum: number };
      const step = schema.type === 'integer' ? 1 : 0.001;
      expect([name, accepts(name, String(minimum)), accepts(name, String(maximum))]).toEqual([name, true, true]);
      expect([name, accepts(name, String(minimum - step)), accepts(name, String(maximum + step))]).toEqual([name, false, false]);
    }
    const render = parameters.find((p) => p.name === 'render');
    expect(render?.schema.enum?.filter((value) => !accepts('render', value))).toEqual([]);
    expect(accepts('render', 'gif')).toBe(false);
  });
});
