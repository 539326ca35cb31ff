/**
 * Every route of a real listening server (127.0.0.1, port 0) with the tiny fixture model,
 * compared against the library called directly on the same bytes: the server is a thin layer.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { DetectionResult } from '../../src/detection/types';
import { ROUTES } from '../../src/server/routes/table';
import { FIXTURE_MODEL, IMAGES, metricValue, multipart, startTestServer, type ErrorBody, useFixtureServer } from '../helpers/server';

interface DetectBody {
  model: string;
  width: number;
  height: number;
  detections: DetectionResult['detections'];
  timings_ms: Record<string, number>;
}

interface DeepStackBody {
  success: boolean;
  predictions: Array<{ label: string; confidence: number; x_min: number; y_min: number; x_max: number; y_max: number }>;
  count: number;
  duration: number;
  error?: string;
}

const landscape = readFileSync(path.join(IMAGES, 'landscape.jpg'));
const portrait = readFileSync(path.join(IMAGES, 'portrait.jpg'));
const alphaPng = readFileSync(path.join(IMAGES, 'alpha.png'));
const modelJson = JSON.parse(readFileSync(path.join(FIXTURE_MODEL, 'model.json'), 'utf8')) as {
  name: string;
  architecture: string;
  classes: string[];
  provenance: unknown;
  transform: { min_size: number; max_size: number };
  roi_heads: { score_thresh: number; detections_per_img: number };
};
const labels = modelJson.classes.filter((label, id) => id > 0 && label !== 'N/A');

const fixture = useFixtureServer();

function post(pathname: string, body: Uint8Array | string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${fixture.server.url}${pathname}`, { method: 'POST', body, headers });
}

async function postMultipart(pathname: string, parts: Parameters<typeof multipart>[0]): Promise<Response> {
  const { body, contentType } = multipart(parts);
  return post(pathname, body, { 'Content-Type': contentType });
}

describe('POST /v1/detect', () => {
  it('returns exactly what the library returns, for a raw JPEG body', async () => {
    const response = await post('/v1/detect', landscape, { 'Content-Type': 'image/jpeg' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await response.json()) as DetectBody;
    const direct = await fixture.detector.detect(landscape);
    expect(body.model).toBe(modelJson.name);
    expect(body.width).toBe(600);
    expect(body.height).toBe(400);
    expect(body.detections).toEqual(direct.detections);
    expect(Object.keys(body.timings_ms).sort()).toEqual([
      'backbone_rpn',
      'box_head',
      'decode',
      'postprocess',
      'queue',
      'rpn_postprocess',
      'total',
      'transform',
    ]);
    for (const d of body.detections) {
      expect(labels).toContain(d.label);
      expect(modelJson.classes[d.class_id]).toBe(d.label);
      expect(d.box.xmin).toBeGreaterThanOrEqual(0);
      expect(d.box.xmax).toBeLessThanOrEqual(600);
      expect(d.box.ymax).toBeLessThanOrEqual(400);
    }
  });

  it.each([
    ['a PNG declared as image/jpeg', alphaPng, 'image/jpeg'],
    ['a JPEG as application/octet-stream', portrait, 'application/octet-stream'],
    ['a JPEG as text/plain', portrait, 'text/plain'],
    ['a JPEG with no content type', portrait, undefined],
  ])('detects the format from the bytes: %s', async (_name, bytes, contentType) => {
    const headers: Record<string, string> = contentType === undefined ? {} : { 'Content-Type': contentType };
    const response = await fetch(`${fixture.server.url}/v1/detect`, { method: 'POST', body: new Blob([bytes]), headers });
    expect(response.status).toBe(200);
    const body = (await response.json()) as DetectBody;
    expect(body.detections).toEqual((await fixture.detector.detect(bytes)).detections);
  });

  it.each([
    ['a file part with its content type', { filename: 'photo.jpg', contentType: 'image/jpeg' }],
    ['a file part with a wrong content type', { filename: 'photo.gif', contentType: 'image/gif' }],
    ['a file part with no content type', { filename: 'photo' }],
    ['a text part with no filename', {}],
    ['an application/octet-stream part with no filename', { contentType: 'application/octet-stream' }],
  ])('reads the multipart field image from %s', async (_name, part) => {
    const response = await postMultipart('/v1/detect', [
      { name: 'note', value: 'ignored' },
      { name: 'image', value: portrait, ...part },
    ]);
    expect(response.status).toBe(200);
    const body = (await response.json()) as DetectBody;
    expect(body.width).toBe(384);
    expect(body.height).toBe(512);
    expect(body.detections).toEqual((await fixture.detector.detect(portrait)).detections);
  });

  it('applies score_threshold, max_detections and classes from the query', async () => {
    const all = await fixture.detector.detect(landscape, { scoreThreshold: 0 });
    expect(all.detections.length).toBeGreaterThan(1);
    const threshold = all.detections[Math.floor(all.detections.length / 2)]!.score;
    const response = await post(`/v1/detect?score_threshold=${threshold}&max_detections=3`, landscape);
    const body = (await response.json()) as DetectBody;
    expect(body.detections).toEqual((await fixture.detector.detect(landscape, { scoreThreshold: threshold, maxDetections: 3 })).detections);
    expect(body.detections.length).toBeLessThanOrEqual(3);

    const label = all.detections[0]!.label;
    const byClass = (await (
      await post(`/v1/detect?score_threshold=0&classes=${encodeURIComponent(label)}`, landscape)
    ).json()) as DetectBody;
    expect(byClass.detections.length).toBeGreaterThan(0);
    expect(byClass.detections.every((d) => d.label === label)).toBe(true);
    expect(byClass.detections).toEqual((await fixture.detector.detect(landscape, { scoreThreshold: 0, classes: [label] })).detections);
  });

  it('takes the same parameters as multipart fields', async () => {
    const response = await postMultipart('/v1/detect', [
      { name: 'score_threshold', value: '0' },
      { name: 'max_detections', value: '2' },
      { name: 'image', value: landscape, filename: 'x.jpg' },
    ]);
    const body = (await response.json()) as DetectBody;
    expect(body.detections).toEqual((await fixture.detector.detect(landscape, { scoreThreshold: 0, maxDetections: 2 })).detections);
  });

  it.each([
    ['score_threshold=2', "score_threshold must be a number in [0, 1], got '2'"],
    ['max_detections=-1', "max_detections must be an integer in [1, 100000], got '-1'"],
    ['classes=no-such-class', "classes: unknown class 'no-such-class'"],
    ['render=gif', "render must be one of 1, 0, png, jpeg, got 'gif'"],
    ['score_threshold=0.1&score_threshold=0.2', 'score_threshold is given more than once'],
  ])('answers 400 INVALID_PARAMETER for %s', async (query, message) => {
    const response = await post(`/v1/detect?${query}`, landscape);
    expect(response.status).toBe(400);
    const body = (await response.json()) as ErrorBody;
    expect(body.error.code).toBe('INVALID_PARAMETER');
    expect(body.error.message).toContain(message);
  });

  it('renders the boxes into a PNG with render=1, or a JPEG when Accept prefers it', async () => {
    const png = await post('/v1/detect?render=1&score_threshold=0', landscape);
    expect(png.status).toBe(200);
    expect(png.headers.get('content-type')).toBe('image/png');
    const pngBytes = Buffer.from(await png.arrayBuffer());
    expect(await sharp(pngBytes).metadata()).toMatchObject({ format: 'png', width: 600, height: 400 });
    const all = await fixture.detector.detect(landscape, { scoreThreshold: 0 });
    expect(png.headers.get('x-detections')).toBe(String(all.detections.length));
    // the drawn image differs from the plain decode exactly where boxes are
    const plain = await sharp(landscape).removeAlpha().raw().toBuffer();
    const drawn = await sharp(pngBytes).removeAlpha().raw().toBuffer();
    expect(drawn.equals(plain)).toBe(all.detections.length === 0);

    const jpeg = await post('/v1/detect', landscape, { Accept: 'image/jpeg' });
    expect(jpeg.headers.get('content-type')).toBe('image/jpeg');
    expect((await sharp(Buffer.from(await jpeg.arrayBuffer())).metadata()).format).toBe('jpeg');

    for (const accept of ['*/*', 'application/json, image/png;q=0.5', 'text/html']) {
      const json = await post('/v1/detect', landscape, { Accept: accept });
      expect(json.headers.get('content-type')).toMatch(/^application\/json/);
    }
  });
});

describe('DeepStack / CodeProject.AI compatible routes', () => {
  const deepstackParts = (bytes: Uint8Array, extra: Array<{ name: string; value: string }> = []) => [
    // what deepstack-python and Frigate send: requests' files={"image": bytes}
    { name: 'image', value: bytes, filename: 'image' },
    ...extra,
  ];

  it('answers /v1/vision/detection in DeepStack form with min_confidence 0.45 by default', async () => {
    const response = await postMultipart('/v1/vision/detection', deepstackParts(landscape));
    expect(response.status).toBe(200);
    const body = (await response.json()) as DeepStackBody;
    const direct = await fixture.detector.detect(landscape, { scoreThreshold: 0.45 });
    expect(body.success).toBe(true);
    expect(body.count).toBe(direct.detections.length);
    expect(body.predictions).toEqual(
      direct.detections.map((d) => ({
        label: d.label,
        confidence: d.score,
        x_min: Math.round(d.box.xmin),
        y_min: Math.round(d.box.ymin),
        x_max: Math.round(d.box.xmax),
        y_max: Math.round(d.box.ymax),
      })),
    );
    for (const p of body.predictions) for (const v of [p.x_min, p.y_min, p.x_max, p.y_max]) expect(Number.isInteger(v)).toBe(true);
    expect(typeof body.duration).toBe('number');
  });

  it('honours min_confidence and serves /v1/vision/custom/{model} under the model name and directory name', async () => {
    for (const name of [modelJson.name, path.basename(FIXTURE_MODEL)]) {
      const response = await postMultipart(
        `/v1/vision/custom/${encodeURIComponent(name)}`,
        deepstackParts(landscape, [{ name: 'min_confidence', value: '0.05' }]),
      );
      expect(response.status).toBe(200);
      const body = (await response.json()) as DeepStackBody;
      expect(body.count).toBe((await fixture.detector.detect(landscape, { scoreThreshold: 0.05 })).detections.length);
    }
  });

  it('answers errors in DeepStack shape', async () => {
    const unknownModel = await postMultipart('/v1/vision/custom/yolov5', deepstackParts(landscape));
    expect(unknownModel.status).toBe(404);
    expect(await unknownModel.json()).toEqual({
      success: false,
      error: `unknown model 'yolov5'; this server serves '${modelJson.name}'`,
      code: 404,
    });

    const noImage = await postMultipart('/v1/vision/detection', [{ name: 'min_confidence', value: '0.5' }]);
    expect(noImage.status).toBe(400);
    expect(await noImage.json()).toEqual({ success: false, error: "no image: the multipart body has no field 'image'", code: 400 });

    const badConfidence = await postMultipart(
      '/v1/vision/detection',
      deepstackParts(landscape, [{ name: 'min_confidence', value: 'high' }]),
    );
    expect(badConfidence.status).toBe(400);
    expect(((await badConfidence.json()) as DeepStackBody).error).toBe("min_confidence must be a number in [0, 1], got 'high'");

    const notImage = await postMultipart('/v1/vision/detection', deepstackParts(Buffer.from('not an image at all')));
    expect(notImage.status).toBe(415);
    expect(((await notImage.json()) as DeepStackBody).success).toBe(false);
  });

  it('answers the ping', async () => {
    const response = await fetch(`${fixture.server.url}/v1/status/ping`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ success: true });
  });
});

describe('information and operations routes', () => {
  it('describes the model from model.json at /v1/models', async () => {
    const response = await fetch(`${fixture.server.url}/v1/models`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { models: Array<Record<string, unknown>> };
    expect(body.models).toHaveLength(1);
    expect(body.models[0]).toMatchObject({
      name: modelJson.name,
      architecture: modelJson.architecture,
      classes: modelJson.classes.map((label, class_id) => ({ class_id, label })).filter((c) => c.class_id > 0 && c.label !== 'N/A'),
      input: { min_size: modelJson.transform.min_size, max_size: modelJson.transform.max_size },
      defaults: { score_threshold: modelJson.roi_heads.score_thresh, max_detections: modelJson.roi_heads.detections_per_img },
      precision: 'fp32',
      speed_only: false,
      provenance: modelJson.provenance,
    });
    const graphs = (modelJson as unknown as { graphs: Record<'backbone_rpn' | 'box_head', { sha256: string }> }).graphs;
    expect(body.models[0]!.graphs).toEqual({
      backbone_rpn: { sha256: graphs.backbone_rpn.sha256 },
      box_head: { sha256: graphs.box_head.sha256 },
    });
  });

  it('is alive and ready once warmed up', async () => {
    expect(await (await fetch(`${fixture.server.url}/healthz`)).json()).toEqual({ status: 'alive' });
    const ready = await fetch(`${fixture.server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', model: modelJson.name });
  });

  it('reports not ready before the warm-up inference and while draining', async () => {
    const cold = await startTestServer(fixture.detector, {}, false);
    try {
      const starting = await fetch(`${cold.url}/readyz`);
      expect(starting.status).toBe(503);
      expect(await starting.json()).toEqual({ status: 'starting', model: modelJson.name });
      expect((await fetch(`${cold.url}/healthz`)).status).toBe(200);
      await cold.detection.warmUp();
      expect((await fetch(`${cold.url}/readyz`)).status).toBe(200);
      cold.detection.lifecycle.phase = 'draining';
      const draining = await fetch(`${cold.url}/readyz`);
      expect(draining.status).toBe(503);
      expect(await draining.json()).toEqual({ status: 'draining', model: modelJson.name });
      const refused = await fetch(`${cold.url}/v1/detect`, { method: 'POST', body: landscape });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('connection')).toBe('close');
      expect(((await refused.json()) as ErrorBody).error.code).toBe('SHUTTING_DOWN');
    } finally {
      await cold.shutdown();
    }
  });

  it('serves the demo page with no external assets', async () => {
    const response = await fetch(`${fixture.server.url}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await response.text();
    expect(html).toContain('<canvas id="canvas"');
    expect(html).not.toMatch(/(src|href)=["']https?:/);
  });

  it('publishes an OpenAPI document listing exactly the served routes and methods', async () => {
    const response = await fetch(`${fixture.server.url}/openapi.json`);
    const doc = (await response.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toBe('3.1.0');
    const documented = Object.entries(doc.paths)
      .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))
      .sort();
    const served = ROUTES.flatMap((r) => r.methods.map((m) => `${m} ${r.path.replace(/:(\w+)/g, '{$1}')}`)).sort();
    expect(documented).toEqual(served);
  });

  it('registers exactly the routes and methods of the route table, no more', () => {
    interface Layer {
      route?: { path: string; methods: Record<string, boolean> };
      handle: { stack?: Layer[] };
    }
    const registered = (stack: readonly Layer[]): string[] =>
      stack.flatMap((layer) => {
        if (layer.route === undefined) return registered(layer.handle.stack ?? []);
        const methods = Object.keys(layer.route.methods);
        // app.all (every method): the 405 answers of routes/table.ts, not a route of its own
        if (methods.includes('m-search')) return [];
        return methods.map((m) => `${m.toUpperCase()} ${layer.route?.path}`);
      });
    const app = fixture.server.detection.app as unknown as { router: { stack: Layer[] } };
    const inTable = ROUTES.flatMap((r) => r.methods.map((m) => `${m} ${r.path}`)).sort();
    expect([...new Set(registered(app.router.stack))].sort()).toEqual(inTable);
  });

  it('serves every method each route lists (a listed method is never answered 405)', async () => {
    const answers = [];
    for (const route of ROUTES) {
      const url = `${fixture.server.url}${route.path.replace(':model', modelJson.name).replace(':version', '1')}`;
      for (const method of route.methods)
        answers.push([method, route.path, (await fetch(url, { method, body: method === 'POST' ? landscape : undefined })).status]);
    }
    expect(answers.filter(([, , status]) => status === 405)).toEqual([]);
    expect(answers).toHaveLength(ROUTES.reduce((n, r) => n + r.methods.length, 0));
  });

  it('answers unknown routes with 404 and wrong methods with 405 + Allow, as JSON errors', async () => {
    const missing = await fetch(`${fixture.server.url}/v2/detect`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'no route GET /v2/detect; see GET /openapi.json' } });
    const wrongMethod = await fetch(`${fixture.server.url}/v1/detect`);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
    expect(((await wrongMethod.json()) as ErrorBody).error.code).toBe('METHOD_NOT_ALLOWED');
    const deleteHealth = await fetch(`${fixture.server.url}/healthz`, { method: 'DELETE' });
    expect(deleteHealth.status).toBe(405);
    expect(deleteHealth.headers.get('allow')).toBe('GET, HEAD');
  });
});

describe('request ids, logs and metrics', () => {
  it('echoes a sane X-Request-Id, replaces a bad one, and logs it with status and latency', async () => {
    const given = await post('/v1/detect', landscape, { 'X-Request-Id': 'frigate-cam1.42' });
    expect(given.headers.get('x-request-id')).toBe('frigate-cam1.42');
    const replaced = await post('/v1/detect', landscape, { 'X-Request-Id': 'bad id with spaces' });
    expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const line = fixture.server.logs.find((l) => (l.req as { id?: string } | undefined)?.id === 'frigate-cam1.42' && 'responseTime' in l);
    expect(line).toMatchObject({ res: { statusCode: 200 }, req: { method: 'POST', url: '/v1/detect' } });
    expect(typeof line?.responseTime).toBe('number');
  });

  it('logs neither image bytes nor keys', async () => {
    await post('/v1/detect?api_key=query-secret-123', landscape, { Authorization: 'Bearer header-secret-123' });
    await postMultipart('/v1/vision/detection', [
      { name: 'image', value: landscape, filename: 'image' },
      { name: 'api_key', value: 'form-secret-123' },
    ]);
    const all = fixture.server.rawLogs.join('');
    expect(all).not.toContain('secret-123');
    expect(all).not.toContain(landscape.subarray(0, 64).toString('latin1'));
    expect(all).toContain('api_key=[redacted]');
  });

  it('exports request, inference, queue and detection metrics', async () => {
    await post('/v1/detect', landscape);
    await post('/v1/detect', Buffer.from('garbage'));
    const text = await (await fetch(`${fixture.server.url}/metrics`)).text();
    expect(metricValue(text, 'cpwc_http_request_duration_seconds_count{method="POST",route="/v1/detect",status="200"}')).toBeGreaterThan(0);
    expect(metricValue(text, 'cpwc_http_request_duration_seconds_count{method="POST",route="/v1/detect",status="415"}')).toBeGreaterThan(0);
    for (const stage of ['decode', 'transform', 'backbone_rpn', 'rpn_postprocess', 'box_head', 'postprocess', 'total']) {
      expect(metricValue(text, `cpwc_inference_stage_duration_seconds_count{stage="${stage}",model="${modelJson.name}"}`)).toBeGreaterThan(
        0,
      );
    }
    expect(metricValue(text, `cpwc_images_total{outcome="ok",model="${modelJson.name}"}`)).toBeGreaterThan(0);
    expect(metricValue(text, `cpwc_images_total{outcome="IMAGE_UNSUPPORTED_FORMAT",model="${modelJson.name}"}`)).toBeGreaterThan(0);
    expect(metricValue(text, 'cpwc_queue_depth')).toBe(0);
    expect(metricValue(text, 'cpwc_inferences_in_flight')).toBe(0);
    expect(text).toContain('# TYPE cpwc_rejected_requests_total counter');
    expect(text).toContain('# TYPE cpwc_detections_total counter');
    expect(text).toContain('# TYPE cpwc_queue_wait_seconds histogram');
    expect(metricValue(text, 'cpwc_process_resident_memory_bytes')).toBeGreaterThan(0);
    const direct = await fixture.detector.detect(landscape);
    if (direct.detections.length > 0) {
      expect(metricValue(text, `cpwc_detections_total{label="${direct.detections[0]!.label}",model="${modelJson.name}"}`)).toBeGreaterThan(
        0,
      );
    }
  });
});
