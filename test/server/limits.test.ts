/**
 * Overload and abuse: bounded queue (503 + Retry-After), clients that leave, deadlines, body
 * limits. The inference slot is held with the server's own limiter, so "the server is busy" is
 * exact rather than a race against the model's speed.
 */
import { randomFillSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { Detector } from '../../src/detection/detector';
import { IMAGES, loadFixtureDetector, metricValue, multipart, rawRequest, startTestServer, waitFor, type ErrorBody, type TestServer } from './helpers';

const landscape = readFileSync(path.join(IMAGES, 'landscape.jpg'));
let detector: Detector;

beforeAll(async () => {
  detector = await loadFixtureDetector();
});
afterAll(async () => {
  await detector?.close();
});

/** Occupies the server's only inference slot until `release()`. */
function holdSlot(server: TestServer): { release: () => void; done: Promise<void> } {
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const done = server.detection.inference.limiter.run(() => held);
  return { release, done };
}

async function metrics(server: TestServer): Promise<string> {
  return (await fetch(`${server.url}/metrics`)).text();
}

describe('bounded queue', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(detector, { concurrency: 1, queueSize: 1 });
  });
  afterAll(async () => {
    await server.shutdown();
  });

  it('queues up to queue-size requests, refuses the next with 503 QUEUE_FULL + Retry-After, then serves the queued one', async () => {
    const slot = holdSlot(server);
    const queued = fetch(`${server.url}/v1/detect`, { method: 'POST', body: landscape });
    await waitFor(() => server.detection.inference.limiter.state.queued === 1, 5_000, 'the request to queue');
    const refused = await fetch(`${server.url}/v1/detect`, { method: 'POST', body: landscape });
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await refused.json()) as ErrorBody).error.code).toBe('QUEUE_FULL');
    // a photo-sized unread body is drained, so the client can reuse its connection
    expect(refused.headers.get('connection')).toBe('keep-alive');
    const deepstackRefused = await fetch(`${server.url}/v1/vision/detection`, { method: 'POST', body: landscape });
    expect(deepstackRefused.status).toBe(503);
    expect(((await deepstackRefused.json()) as { success: boolean }).success).toBe(false);
    slot.release();
    await slot.done;
    expect((await queued).status).toBe(200);
    const text = await metrics(server);
    expect(metricValue(text, 'cpwc_rejected_requests_total{reason="QUEUE_FULL"}')).toBe(2);
    expect(metricValue(text, 'cpwc_http_request_duration_seconds_count{method="POST",route="/v1/detect",status="503"}')).toBe(1);
  });

  it('counts uploads in progress against the same bound, refusing before reading the body', async () => {
    // concurrency 1 + queue 1: two slow uploads take both places while nothing runs yet
    const uploads = [0, 1].map(() =>
      rawRequest(server.url, { path: '/v1/detect', headers: { 'Content-Length': String(landscape.length) }, chunks: [landscape.subarray(0, 1000)], finish: false }),
    );
    await waitFor(() => server.detection.inference.admitted === 2, 5_000, 'both uploads to be admitted');
    expect(server.detection.inference.limiter.state).toEqual({ running: 0, queued: 0 });
    const refused = await fetch(`${server.url}/v1/detect`, { method: 'POST', body: landscape });
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as ErrorBody).error.code).toBe('QUEUE_FULL');
    for (const upload of uploads) {
      upload.request.destroy();
      await upload.response.catch(() => undefined);
    }
    await waitFor(() => server.detection.inference.admitted === 0, 5_000, 'the abandoned uploads to be released');
    expect((await fetch(`${server.url}/v1/detect`, { method: 'POST', body: landscape })).status).toBe(200);
  });

  it('drops a queued request whose client disconnected, without running the model for it', async () => {
    const before = metricValue(await metrics(server), `cpwc_inference_stage_duration_seconds_count{stage="total",model="${detector.model.name}"}`) ?? 0;
    const slot = holdSlot(server);
    const client = new AbortController();
    const abandoned = fetch(`${server.url}/v1/detect`, { method: 'POST', body: landscape, signal: client.signal });
    await waitFor(() => server.detection.inference.limiter.state.queued === 1, 5_000, 'the request to queue');
    client.abort();
    await expect(abandoned).rejects.toThrow();
    await waitFor(() => server.detection.inference.limiter.state.queued === 0, 5_000, 'the queue to empty');
    slot.release();
    await slot.done;
    const text = await metrics(server);
    expect(metricValue(text, `cpwc_inference_stage_duration_seconds_count{stage="total",model="${detector.model.name}"}`) ?? 0).toBe(before);
    expect(metricValue(text, 'cpwc_rejected_requests_total{reason="CLIENT_CLOSED"}')).toBe(3);
    expect(metricValue(text, 'cpwc_http_request_duration_seconds_count{method="POST",route="/v1/detect",status="499"}')).toBe(3);
    // and the server is fine afterwards
    expect((await fetch(`${server.url}/v1/detect`, { method: 'POST', body: landscape })).status).toBe(200);
  });
});

describe('deadlines', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(detector, { concurrency: 1, queueSize: 4, requestTimeoutMs: 1_500 });
  });
  afterAll(async () => {
    await server.shutdown();
  });

  it('answers 504 DEADLINE_EXCEEDED when the deadline passes in the queue, and never runs it', async () => {
    const before = metricValue(await metrics(server), `cpwc_inference_stage_duration_seconds_count{stage="total",model="${detector.model.name}"}`) ?? 0;
    const slot = holdSlot(server);
    const started = Date.now();
    const response = await fetch(`${server.url}/v1/detect`, { method: 'POST', body: landscape });
    const elapsed = Date.now() - started;
    expect(response.status).toBe(504);
    expect(await response.json()).toEqual({ error: { code: 'DEADLINE_EXCEEDED', message: 'the request did not complete within the server deadline (1500 ms)' } });
    expect(elapsed).toBeGreaterThanOrEqual(1_490);
    expect(elapsed).toBeLessThan(4_000);
    expect(server.detection.inference.limiter.state.queued).toBe(0);
    slot.release();
    await slot.done;
    const text = await metrics(server);
    expect(metricValue(text, `cpwc_inference_stage_duration_seconds_count{stage="total",model="${detector.model.name}"}`) ?? 0).toBe(before);
    expect(metricValue(text, 'cpwc_rejected_requests_total{reason="DEADLINE_EXCEEDED"}')).toBe(1);
  });

  it('answers 504 when the upload itself is slower than the deadline', async () => {
    const { response, request } = rawRequest(server.url, {
      path: '/v1/detect',
      headers: { 'Content-Length': String(landscape.length) },
      chunks: [landscape.subarray(0, 1000)],
      finish: false,
    });
    const answer = await response;
    request.destroy();
    expect(answer.status).toBe(504);
    expect((JSON.parse(answer.body.toString()) as ErrorBody).error.code).toBe('DEADLINE_EXCEEDED');
    expect((await fetch(`${server.url}/v1/detect`, { method: 'POST', body: landscape })).status).toBe(200);
  });
});

describe('a deadline that passes while the inference runs', () => {
  let server: TestServer;
  let bigImage: Buffer;
  let inferenceMs: number;
  beforeAll(async () => {
    // a large noisy photo-sized JPEG: decoding and resizing it takes a while on any CPU
    const noise = randomFillSync(Buffer.alloc(6000 * 4000 * 3));
    bigImage = await sharp(noise, { raw: { width: 6000, height: 4000, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
    const started = performance.now();
    await detector.detect(bigImage);
    inferenceMs = performance.now() - started;
    server = await startTestServer(detector, { concurrency: 1, queueSize: 1, requestTimeoutMs: Math.max(100, Math.floor(inferenceMs / 4)) });
  }, 60_000);
  afterAll(async () => {
    await server.shutdown();
  });

  it('answers 504 at the deadline, and keeps the slot until the inference really stops', async () => {
    expect(inferenceMs).toBeGreaterThan(200); // precondition: the deadline falls well inside the inference
    const started = performance.now();
    const response = await fetch(`${server.url}/v1/detect`, { method: 'POST', body: bigImage });
    const elapsed = performance.now() - started;
    expect(response.status).toBe(504);
    expect(elapsed).toBeLessThan(inferenceMs * 0.75);
    expect(server.detection.inference.limiter.state.running).toBe(1);
    await waitFor(() => server.detection.inference.limiter.state.running === 0, 30_000, 'the aborted inference to stop');
    // The server keeps serving. The deadline is short (a quarter of the big image's inference), so on a
    // loaded machine even tiny.png may run past it: allow a few tries, but only 200 or 504 as answers.
    const tiny = readFileSync(path.join(IMAGES, 'tiny.png'));
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 5 && statuses[statuses.length - 1] !== 200; attempt++) {
      statuses.push((await fetch(`${server.url}/v1/detect`, { method: 'POST', body: tiny })).status);
      await waitFor(() => server.detection.inference.limiter.state.running === 0, 30_000, 'the inference to stop');
    }
    expect(statuses.every((status) => status === 200 || status === 504)).toBe(true);
    expect(statuses[statuses.length - 1]).toBe(200);
  }, 60_000);
});

describe('body limits', () => {
  let server: TestServer;
  const limit = 64 * 1024;
  const big = Buffer.alloc(200 * 1024, 7);
  beforeAll(async () => {
    server = await startTestServer(detector, { maxBodyBytes: limit });
  });
  afterAll(async () => {
    await server.shutdown();
  });

  const expectTooLarge = (answer: { status: number; body: Buffer; headers: Record<string, unknown> }): void => {
    expect(answer.status).toBe(413);
    expect(answer.headers.connection).toBe('close');
    expect(JSON.parse(answer.body.toString())).toEqual({ error: { code: 'BODY_TOO_LARGE', message: `the request body is larger than this server accepts (${limit} bytes)` } });
  };

  it('refuses a declared Content-Length over the limit before reading the body', async () => {
    const { response, request } = rawRequest(server.url, { path: '/v1/detect', headers: { 'Content-Length': String(big.length) }, chunks: [], finish: false });
    expectTooLarge(await response);
    request.destroy();
  });

  it('stops a chunked body (no Content-Length) once it passes the limit', async () => {
    const chunks = Array.from({ length: 20 }, (_, i) => big.subarray(i * 10_240, (i + 1) * 10_240));
    const { response } = rawRequest(server.url, { path: '/v1/detect', chunks, pauseMs: 5 });
    expectTooLarge(await response);
  });

  it('counts the whole multipart body, whatever the parts', async () => {
    const { body, contentType } = multipart([{ name: 'other', value: big, filename: 'x.bin' }, { name: 'image', value: landscape, filename: 'x.jpg' }]);
    const { response } = rawRequest(server.url, { path: '/v1/vision/detection', headers: { 'Content-Type': contentType }, chunks: [body] });
    const answer = await response;
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body.toString())).toMatchObject({ success: false, code: 413 });
  });

  it('reads a body of exactly the limit, and keeps serving after refusals', async () => {
    const atLimit = await fetch(`${server.url}/v1/detect`, { method: 'POST', body: Buffer.alloc(limit, 1) });
    expect(atLimit.status).toBe(415);
    expect(((await atLimit.json()) as ErrorBody).error.code).toBe('IMAGE_UNSUPPORTED_FORMAT');
    expect(landscape.length).toBeLessThan(limit);
    expect((await fetch(`${server.url}/v1/detect`, { method: 'POST', body: landscape })).status).toBe(200);
  });
});
