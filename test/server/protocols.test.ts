/**
 * The protocol routes at the HTTP level, where the real clients (clients-*.test.ts) do not reach:
 * CodeProject.AI's fields and routes, the DeepStack prediction cap (Frigate), KServe v2's binary
 * tensor framing and its refusals, Hugging Face's JSON body, and CORS.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Detector } from '../../src/detection/detector';
import type { Detection } from '../../src/detection/types';
import { SERVER_VERSION, versionParts } from '../../src/server/version';
import { decodeBytesTensor, encodeBytesTensor, parseInferRequest } from '../../src/server/routes/kserve-tensors';
import { FIXTURE_MODEL, IMAGES, loadFixtureDetector, multipart, startTestServer, type TestServer } from '../helpers/server';

const MODEL = path.basename(FIXTURE_MODEL);
const landscape = readFileSync(path.join(IMAGES, 'landscape.jpg'));

interface OpenApiDocument {
  paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
}

/** The statuses the served document lists for one operation. */
async function documentedStatuses(server: TestServer, route: string, method: string): Promise<string[]> {
  const document = (await (await fetch(`${server.url}/openapi.json`)).json()) as OpenApiDocument;
  return Object.keys(document.paths[route]?.[method]?.responses ?? {});
}

async function nativeDetections(server: TestServer, query: string): Promise<Detection[]> {
  const response = await fetch(`${server.url}/v1/detect${query}`, { method: 'POST', body: landscape });
  return ((await response.json()) as { detections: Detection[] }).detections;
}

/** A KServe v2 binary request: JSON header, then IMAGE as one length-prefixed BYTES element. */
function binaryInfer(image: Buffer, extra: Record<string, unknown> = {}): { body: Buffer; headers: Record<string, string> } {
  const length = Buffer.alloc(4);
  length.writeUInt32LE(image.length, 0);
  const tensor = Buffer.concat([length, image]);
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'IMAGE', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: tensor.length } }],
      ...extra,
    }),
  );
  return { body: Buffer.concat([header, tensor]), headers: { 'Inference-Header-Content-Length': String(header.length) } };
}

describe('protocol routes', () => {
  let detector: Detector;
  let server: TestServer;
  let capped: TestServer;
  let cors: TestServer;
  let locked: TestServer;

  beforeAll(async () => {
    detector = await loadFixtureDetector();
    server = await startTestServer(detector);
    capped = await startTestServer(detector, { deepstackMaxPredictions: 2 });
    cors = await startTestServer(detector, { corsOrigins: ['https://app.example'] });
    locked = await startTestServer(detector, { apiKeys: ['protocol-key-0001'] });
  });
  afterAll(async () => {
    await server?.shutdown();
    await capped?.shutdown();
    await cors?.shutdown();
    await locked?.shutdown();
    await detector?.close();
  });

  describe('DeepStack / CodeProject.AI', () => {
    it("answers CodeProject.AI's fields, predictions best first with lower-case labels, fields in any order", async () => {
      const { body, contentType } = multipart([
        { name: 'min_confidence', value: '0.5' },
        { name: 'image', value: landscape, filename: 'x.jpg' },
      ]);
      const response = await fetch(`${server.url}/v1/vision/detection`, { method: 'POST', body, headers: { 'Content-Type': contentType } });
      expect(response.status).toBe(200);
      const answer = (await response.json()) as Record<string, unknown> & { predictions: Array<{ label: string; confidence: number }> };
      for (const field of [
        'success',
        'message',
        'predictions',
        'count',
        'command',
        'moduleId',
        'executionProvider',
        'canUseGPU',
        'inferenceMs',
        'processMs',
        'analysisRoundTripMs',
      ]) {
        expect(answer).toHaveProperty(field);
      }
      expect(answer).toMatchObject({
        success: true,
        command: 'detect',
        moduleId: 'cpwc-detect',
        executionProvider: 'CPU',
        canUseGPU: false,
        code: 200,
      });
      const reference = await nativeDetections(server, '?score_threshold=0.5');
      expect(answer.count).toBe(reference.length);
      expect(answer.predictions.map((p) => p.confidence)).toEqual(reference.map((d) => d.score));
      expect(answer.predictions.map((p) => p.label)).toEqual(reference.map((d) => d.label.toLowerCase()));
      const scores = answer.predictions.map((p) => p.confidence);
      expect(scores).toEqual([...scores].sort((a, b) => b - a));
      const custom = await fetch(`${server.url}/v1/vision/custom/${MODEL}`, {
        method: 'POST',
        body,
        headers: { 'Content-Type': contentType },
      });
      expect(((await custom.json()) as { command: string }).command).toBe('custom');
    });

    it('caps predictions at --deepstack-max-predictions, best first, and leaves /v1/detect alone', async () => {
      const { body, contentType } = multipart([
        { name: 'image', value: landscape },
        { name: 'min_confidence', value: '0' },
      ]);
      const response = await fetch(`${capped.url}/v1/vision/detection`, { method: 'POST', body, headers: { 'Content-Type': contentType } });
      const answer = (await response.json()) as { count: number; predictions: Array<{ confidence: number }> };
      const reference = await nativeDetections(capped, '?score_threshold=0');
      expect(reference.length).toBeGreaterThan(2);
      expect(answer.count).toBe(2);
      expect(answer.predictions.map((p) => p.confidence)).toEqual(reference.slice(0, 2).map((d) => d.score));
    });

    it('lists the catalog at POST /v1/vision/custom/list and answers GET /v1/status/updateavailable', async () => {
      const list = await fetch(`${server.url}/v1/vision/custom/list`, { method: 'POST' });
      expect(list.status).toBe(200);
      expect(await list.json()).toMatchObject({ success: true, models: [MODEL], command: 'list' });
      const form = multipart([{ name: 'api_key', value: 'ignored-when-open' }]);
      const listForm = await fetch(`${server.url}/v1/vision/custom/list`, {
        method: 'POST',
        body: form.body,
        headers: { 'Content-Type': form.contentType },
      });
      expect(((await listForm.json()) as { models: string[] }).models).toEqual([MODEL]);
      const update = await fetch(`${server.url}/v1/status/updateavailable`);
      expect(update.status).toBe(200);
      const packageVersion = (JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string })
        .version;
      expect(SERVER_VERSION).toBe(packageVersion);
      expect(await update.json()).toMatchObject({ success: true, updateAvailable: false, version: versionParts(packageVersion) });
      expect(((await (await fetch(`${server.url}/v2`)).json()) as { version: string }).version).toBe(packageVersion);
      const wrongMethod = await fetch(`${server.url}/v1/vision/custom/list`);
      expect(wrongMethod.status).toBe(405);
    });

    it('refuses a malformed multipart body at POST /v1/vision/custom/list with a documented 400 in DeepStack shape', async () => {
      const boundary = 'a222103b9b30b1f9e8be6882ecedb1d2';
      const response = await fetch(`${server.url}/v1/vision/custom/list`, {
        method: 'POST',
        body: `--${boundary}\r\n[]--${boundary}--\r\n`,
        headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` },
      });
      expect([response.status, await response.json()]).toEqual([
        400,
        { success: false, error: 'the multipart/form-data body is malformed: Malformed part header', code: 400 },
      ]);
      expect(await documentedStatuses(server, '/v1/vision/custom/list', 'post')).toEqual(
        expect.arrayContaining(['200', '400', '401', '408', '413', '503']),
      );
    });
  });

  describe('KServe v2', () => {
    it('answers binary tensors in the order asked, FP32 and INT64 little-endian, BYTES length-prefixed', async () => {
      const { body, headers } = binaryInfer(landscape, {
        id: 'req-7',
        outputs: [
          { name: 'CLASS_IDS', parameters: { binary_data: true } },
          { name: 'SCORES', parameters: { binary_data: true } },
          { name: 'LABELS', parameters: { binary_data: true } },
        ],
        parameters: { max_detections: 4 },
      });
      const response = await fetch(`${server.url}/v2/models/${MODEL}/infer`, { method: 'POST', body, headers });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('application/octet-stream');
      const raw = Buffer.from(await response.arrayBuffer());
      const jsonLength = Number(response.headers.get('inference-header-content-length'));
      const head = JSON.parse(raw.subarray(0, jsonLength).toString('utf8')) as {
        id: string;
        model_name: string;
        outputs: Array<{ name: string; shape: number[]; parameters: { binary_data_size: number } }>;
      };
      expect(head.id).toBe('req-7');
      expect(head.model_name).toBe(MODEL);
      const reference = await nativeDetections(server, '?max_detections=4');
      expect(reference).toHaveLength(4);
      expect(head.outputs.map((o) => [o.name, o.shape, o.parameters.binary_data_size])).toEqual([
        ['CLASS_IDS', [4], 32],
        ['SCORES', [4], 16],
        ['LABELS', [4], reference.reduce((n, d) => n + 4 + Buffer.byteLength(d.label), 0)],
      ]);
      let offset = jsonLength;
      const ids = [0, 1, 2, 3].map((i) => Number(raw.readBigInt64LE(offset + i * 8)));
      offset += 32;
      const scores = [0, 1, 2, 3].map((i) => raw.readFloatLE(offset + i * 4));
      offset += 16;
      const labels = decodeBytesTensor(raw.subarray(offset), 'LABELS').map((b) => b.toString('utf8'));
      expect(ids).toEqual(reference.map((d) => d.class_id));
      expect(scores).toEqual(reference.map((d) => Math.fround(d.score)));
      expect(labels).toEqual(reference.map((d) => d.label));
    });

    it('refuses malformed requests with 400 {"error"} naming the problem', async () => {
      const post = (body: Buffer | string, headers: Record<string, string> = {}) =>
        fetch(`${server.url}/v2/models/${MODEL}/infer`, { method: 'POST', body, headers });
      const cases: Array<[Promise<Response>, number, string]> = [
        [post('{not json'), 400, 'the inference request header is not valid JSON'],
        [
          post(JSON.stringify({ inputs: [{ name: 'PIXELS', datatype: 'FP32', shape: [1], data: [0] }] })),
          400,
          "unknown input 'PIXELS'; the only input is IMAGE (BYTES, shape [1])",
        ],
        [
          post(JSON.stringify({ inputs: [{ name: 'IMAGE', datatype: 'BYTES', shape: [1], data: ['%%%'] }] })),
          400,
          'input IMAGE: the JSON string is not base64 (send the encoded image as base64, or use binary data)',
        ],
        [
          post(
            JSON.stringify({
              inputs: [{ name: 'IMAGE', datatype: 'BYTES', shape: [1], data: [landscape.toString('base64')] }],
              outputs: [{ name: 'MASKS' }],
            }),
          ),
          400,
          "unknown output 'MASKS'; outputs are BOXES, SCORES, CLASS_IDS, LABELS",
        ],
        [
          post(
            JSON.stringify({
              inputs: [{ name: 'IMAGE', datatype: 'BYTES', shape: [1], data: [landscape.toString('base64')] }],
              parameters: { score_threshold: 2 },
            }),
          ),
          400,
          "score_threshold must be a number in [0, 1], got '2'",
        ],
        [post('{}', { 'Inference-Header-Content-Length': '99' }), 400, 'Inference-Header-Content-Length is 99 but the body has 2 bytes'],
        [
          post('{}', { 'Content-Encoding': 'gzip' }),
          400,
          "Content-Encoding 'gzip' is not supported: send the inference request uncompressed",
        ],
      ];
      for (const [response, status, message] of cases) {
        const answer = await response;
        expect([answer.status, await answer.json()]).toEqual([status, { error: message }]);
      }
      const json = await post(
        JSON.stringify({ inputs: [{ name: 'IMAGE', datatype: 'BYTES', shape: [1], data: [landscape.toString('base64')] }] }),
      );
      expect(json.status).toBe(200);
      expect(json.headers.get('content-type')).toMatch(/^application\/json/);
    });

    it('splits and joins BYTES tensors and rejects one cut short', () => {
      const joined = encodeBytesTensor(['a', 'béta', '']);
      expect(decodeBytesTensor(joined, 'X').map((b) => b.toString('utf8'))).toEqual(['a', 'béta', '']);
      expect(() => decodeBytesTensor(joined.subarray(0, 6), 'X')).toThrow(
        "input X: binary BYTES data is cut inside an element's 4-byte length",
      );
      expect(() => decodeBytesTensor(joined.subarray(0, 11), 'X')).toThrow('input X: a BYTES element says 5 bytes but only 2 follow');
      expect(() =>
        parseInferRequest(
          Buffer.from(JSON.stringify({ inputs: [{ name: 'IMAGE', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: 10 } }] })),
          undefined,
        ),
      ).toThrow('input IMAGE: binary_data_size 10 runs past the end of the body');
    });
  });

  describe('Hugging Face', () => {
    it('takes the JSON form with a base64 image and a threshold, and refuses a URL input', async () => {
      const post = (body: unknown) =>
        fetch(`${server.url}/models/${MODEL}`, {
          method: 'POST',
          body: JSON.stringify(body),
          headers: { 'Content-Type': 'application/json' },
        });
      const answer = await post({ inputs: landscape.toString('base64'), parameters: { threshold: 0.7 } });
      expect(answer.status).toBe(200);
      const reference = await nativeDetections(server, '?score_threshold=0.7');
      expect(await answer.json()).toEqual(reference.map((d) => ({ label: d.label, score: d.score, box: d.box })));
      const url = await post({ inputs: 'https://example.com/cat.jpg' });
      expect([url.status, await url.json()]).toEqual([
        400,
        { error: 'inputs must be the image as a base64 string (URLs are not fetched by this server)' },
      ]);
      const threshold = await post({ inputs: landscape.toString('base64'), parameters: { threshold: 'high' } });
      expect([threshold.status, await threshold.json()]).toEqual([
        400,
        { error: `parameters.threshold must be a number in [0, 1], got '"high"'` },
      ]);
    });
  });

  it('needs a key on every detection and model route, whatever the protocol; health and metadata of the server stay open', async () => {
    const routes: Array<[string, string, Record<string, unknown>]> = [
      ['POST', '/v1/detect', { error: { code: 'UNAUTHORIZED', message: 'a valid API key is required (Authorization: Bearer KEY)' } }],
      ['POST', '/v1/vision/detection', { success: false, error: 'Incorrect api key', code: 401 }],
      ['POST', `/v1/vision/custom/${MODEL}`, { success: false, error: 'Incorrect api key', code: 401 }],
      ['POST', '/v1/vision/custom/list', { success: false, error: 'Incorrect api key', code: 401 }],
      ['POST', `/models/${MODEL}`, { error: 'a valid API key is required (Authorization: Bearer KEY)' }],
      ['POST', `/v2/models/${MODEL}/infer`, { error: 'a valid API key is required (Authorization: Bearer KEY)' }],
      ['POST', `/v2/models/${MODEL}/versions/1/infer`, { error: 'a valid API key is required (Authorization: Bearer KEY)' }],
      ['GET', `/v2/models/${MODEL}`, { error: 'a valid API key is required (Authorization: Bearer KEY)' }],
      ['GET', `/v2/models/${MODEL}/ready`, { error: 'a valid API key is required (Authorization: Bearer KEY)' }],
      ['GET', `/v2/models/${MODEL}/versions/1/ready`, { error: 'a valid API key is required (Authorization: Bearer KEY)' }],
      ['POST', '/v2/repository/index', { error: 'a valid API key is required (Authorization: Bearer KEY)', code: 'UNAUTHORIZED' }],
      [
        'POST',
        `/v2/repository/models/${MODEL}/load`,
        { error: 'a valid API key is required (Authorization: Bearer KEY)', code: 'UNAUTHORIZED' },
      ],
      [
        'POST',
        `/v2/repository/models/${MODEL}/unload`,
        { error: 'a valid API key is required (Authorization: Bearer KEY)', code: 'UNAUTHORIZED' },
      ],
    ];
    for (const [method, route, body] of routes) {
      const response = await fetch(`${locked.url}${route}`, { method, body: method === 'POST' ? landscape : undefined });
      expect([route, response.status, await response.json()]).toEqual([route, 401, body]);
      const template = route.replace(MODEL, '{model}').replace('/versions/1/', '/versions/{version}/');
      expect([route, await documentedStatuses(locked, template, method.toLowerCase())]).toEqual([route, expect.arrayContaining(['401'])]);
    }
    for (const route of ['/v2', '/v2/health/live', '/v2/health/ready', '/v1/status/updateavailable']) {
      expect([route, (await fetch(`${locked.url}${route}`)).status]).toEqual([route, 200]);
    }
    const keyed = await fetch(`${locked.url}/v2/models/${MODEL}/versions/1/ready`, {
      headers: { Authorization: 'Bearer protocol-key-0001' },
    });
    expect(await keyed.json()).toEqual({ name: MODEL, ready: true });
  });

  it("answers a wrong method in the route's protocol shape, with Allow", async () => {
    const cases: Array<[string, string, unknown]> = [
      ['GET', '/v1/vision/detection', { success: false, error: 'GET is not allowed on /v1/vision/detection; use POST', code: 405 }],
      ['GET', `/models/${MODEL}`, { error: 'GET is not allowed on /models/:model; use POST' }],
      ['GET', `/v2/models/${MODEL}/infer`, { error: 'GET is not allowed on /v2/models/:model/infer; use POST' }],
      ['POST', '/v2/health/live', { error: 'POST is not allowed on /v2/health/live; use GET, HEAD' }],
      ['GET', '/v2/repository/index', { error: 'GET is not allowed on /v2/repository/index; use POST', code: 'METHOD_NOT_ALLOWED' }],
    ];
    for (const [method, route, body] of cases) {
      const response = await fetch(`${server.url}${route}`, { method });
      expect([route, response.status, await response.json()]).toEqual([route, 405, body]);
      expect(response.headers.get('allow')).not.toBeNull();
    }
  });

  describe("Triton's repository API on a server of one detector", () => {
    it('answers index, load and unload with a documented 404 NOT_FOUND in Triton shape, whatever the body (no 405)', async () => {
      const message =
        'this server serves no model repository (it was created with one detector; cpwc-detect serve --model or --model-repository ' +
        'has one)';
      const cases: Array<[string, string, string | undefined]> = [
        ['/v2/repository/index', '/v2/repository/index', undefined],
        ['/v2/repository/index', '/v2/repository/index', '{"ready": {}}'],
        [`/v2/repository/models/${MODEL}/load`, '/v2/repository/models/{model}/load', undefined],
        ['/v2/repository/models/0/unload', '/v2/repository/models/{model}/unload', undefined],
      ];
      for (const [route, template, body] of cases) {
        const response = await fetch(`${server.url}${route}`, {
          method: 'POST',
          body,
          headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
        });
        expect([route, response.status, await response.json()]).toEqual([route, 404, { error: message, code: 'NOT_FOUND' }]);
        expect([route, await documentedStatuses(server, template, 'post')]).toEqual([route, expect.arrayContaining(['404'])]);
      }
    });
  });

  describe('CORS', () => {
    it('answers a preflight from an allowed origin and marks its answers, errors included; other origins get no CORS headers', async () => {
      const preflight = await fetch(`${cors.url}/v1/detect`, {
        method: 'OPTIONS',
        headers: {
          Origin: 'https://app.example',
          'Access-Control-Request-Method': 'POST',
          'Access-Control-Request-Headers': 'authorization, content-type',
        },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example');
      expect(preflight.headers.get('access-control-allow-methods')).toBe('GET, HEAD, POST');
      expect(preflight.headers.get('access-control-allow-headers')).toBe('authorization, content-type');
      const detect = await fetch(`${cors.url}/v1/detect`, { method: 'POST', body: landscape, headers: { Origin: 'https://app.example' } });
      expect(detect.status).toBe(200);
      expect(detect.headers.get('access-control-allow-origin')).toBe('https://app.example');
      expect(detect.headers.get('access-control-expose-headers')).toContain('X-Request-Id');
      const error = await fetch(`${cors.url}/v1/detect`, {
        method: 'POST',
        body: 'not an image',
        headers: { Origin: 'https://app.example' },
      });
      expect(error.status).toBe(415);
      expect(error.headers.get('access-control-allow-origin')).toBe('https://app.example');
      const other = await fetch(`${cors.url}/v1/detect`, {
        method: 'OPTIONS',
        headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' },
      });
      expect(other.status).toBe(405);
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
      // CORS off (the default): a preflight is just a method this route does not allow
      const off = await fetch(`${server.url}/v1/detect`, {
        method: 'OPTIONS',
        headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST' },
      });
      expect(off.status).toBe(405);
      expect(off.headers.get('access-control-allow-origin')).toBeNull();
    });
  });
});
