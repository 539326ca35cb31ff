/**
 * Overload and abuse: bounded queue (503 + Retry-After), clients that leave, deadlines, body
 * limits. The inference slot is held with the server's own limiter, so "the server is busy" is
 * exact rather than a race against the model's speed.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Detector } from '../../src/detection/detector';
import type { ServedDetector } from '../../src/server/served-model';
import {
  IMAGES,
  metricValue,
  multipart,
  rawRequest,
  startTestServer,
  waitFor,
  type ErrorBody,
  type TestServer,
  useFixtureDetector,
} from '../helpers/server';

const landscape = readFileSync(path.join(IMAGES, 'landscape.jpg'));
const fixture = useFixtureDetector();

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

/** How many times the model has run to the end, from a /metrics text (the total stage's count). */
function modelRuns(text: string): number {
  return metricValue(text, `cpwc_inference_stage_duration_seconds_count{stage="total",model="${fixture.detector.model.name}"}`) ?? 0;
}

describe('bounded queue', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(fixture.detector, { concurrency: 1, queueSize: 1 });
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
      rawRequest(server.url, {
        path: '/v1/detect',
        headers: { 'Content-Length': String(landscape.length) },
        chunks: [landscape.subarray(0, 1000)],
        finish: false,
      }),
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
    const before = modelRuns(await metrics(server));
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
    expect(modelRuns(text)).toBe(before);
    expect(metricValue(text, 'cpwc_rejected_requests_total{reason="CLIENT_CLOSED"}')).toBe(3);
    expect(metricValue(text, 'cpwc_http_request_duration_seconds_count{method="POST",route="/v1/detect",status="499"}')).toBe(3);
    // and the server is fine afterwards
    expect((await fetch(`${server.url}/v1/detect`, { method: 'POST', body: landscape })).status).toBe(200);
  });
});

describe('deadlines', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(fixture.detector, { concurrency: 1, queueSize: 4, requestTimeoutMs: 1_500 });
  });
  afterAll(async () => {
    await server.shutdown();
  });

  it('answers 504 DEADLINE_EXCEEDED when the deadline passes in the queue, and never runs it', async () => {
    const before = modelRuns(await metrics(server));
    const slot = holdSlot(server);
    const response = await fetch(`${server.url}/v1/detect`, { method: 'POST', body: landscape });
    // answered while the slot is still held: the request never left the queue
    expect(server.detection.inference.limiter.state.running).toBe(1);
    expect(response.status).toBe(504);
    expect(await response.json()).toEqual({
      error: { code: 'DEADLINE_EXCEEDED', message: 'the request did not complete within the server deadline (1500 ms)' },
    });
    expect(server.detection.inference.limiter.state.queued).toBe(0);
    slot.release();
    await slot.done;
    const text = await metrics(server);
    expect(modelRuns(text)).toBe(before);
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

/**
 * The served detector: the real one, except that the first call after `arm()` waits at the gate
 * (after `entered` resolves) before it runs. "The inference is still running" is then exact, not a race against
 * the model's speed: whatever the server answers before `release()` was answered mid-inference.
 */
function gatedDetector(real: Detector): {
  served: ServedDetector;
  arm: () => void;
  entered: Promise<void>;
  release: () => void;
  settled: Promise<unknown>;
} {
  let enter: () => void = () => undefined;
  const entered = new Promise<void>((resolve) => {
    enter = resolve;
  });
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let settle: (outcome: unknown) => void = () => undefined;
  const settled = new Promise<unknown>((resolve) => {
    settle = resolve;
  });
  let armed = false;
  const served: ServedDetector = {
    model: real.model,
    async detect(image, options) {
      if (!armed) return real.detect(image, options);
      armed = false;
      enter();
      await gate;
      const run = real.detect(image, options);
      run.then(settle, settle);
      return run;
    },
  };
  return { served, arm: () => (armed = true), entered, release, settled };
}

describe('a deadline that passes while the inference runs', () => {
  let server: TestServer;
  let gated: ReturnType<typeof gatedDetector>;
  beforeAll(async () => {
    gated = gatedDetector(fixture.detector);
    server = await startTestServer(gated.served, { concurrency: 1, queueSize: 1, requestTimeoutMs: 1_500 });
    gated.arm();
  });
  afterAll(async () => {
    gated.release();
    await server.shutdown();
  });

  it('answers 504 at the deadline, and keeps the slot until the inference really stops', async () => {
    const answer = fetch(`${server.url}/v1/detect`, { method: 'POST', body: landscape });
    await gated.entered;
    expect(server.detection.inference.limiter.state).toEqual({ running: 1, queued: 0 });
    // the inference is held until release() below, so this answer comes while it still runs:
    // the deadline, not the model, ended the request (a server that waited would hang here)
    const response = await answer;
    expect(response.status).toBe(504);
    expect(await response.json()).toEqual({
      error: { code: 'DEADLINE_EXCEEDED', message: 'the request did not complete within the server deadline (1500 ms)' },
    });
    // the slot stays taken: the next request queues behind the unfinished inference
    expect(server.detection.inference.limiter.state).toEqual({ running: 1, queued: 0 });
    const tiny = readFileSync(path.join(IMAGES, 'tiny.png'));
    const next = fetch(`${server.url}/v1/detect`, { method: 'POST', body: tiny });
    await waitFor(() => server.detection.inference.limiter.state.queued === 1, 5_000, 'the next request to queue');
    expect(server.detection.inference.limiter.state.running).toBe(1);
    gated.release();
    // the aborted inference stops at its first check of the signal, then the queued request runs
    expect(await gated.settled).toMatchObject({ code: 'ABORTED' });
    expect((await next).status).toBe(200);
    await server.detection.inference.limiter.whenIdle();
    const text = await metrics(server);
    expect(metricValue(text, 'cpwc_rejected_requests_total{reason="DEADLINE_EXCEEDED"}')).toBe(1);
  });
});

describe('body limits', () => {
  let server: TestServer;
  const limit = 64 * 1024;
  const big = Buffer.alloc(200 * 1024, 7);
  beforeAll(async () => {
    server = await startTestServer(fixture.detector, { maxBodyBytes: limit });
  });
  afterAll(async () => {
    await server.shutdown();
  });

  const expectTooLarge = (answer: { status: number; body: Buffer; headers: Record<string, unknown> }): void => {
    expect(answer.status).toBe(413);
    expect(answer.headers.connection).toBe('close');
    expect(JSON.parse(answer.body.toString())).toEqual({
      error: { code: 'BODY_TOO_LARGE', message: `the request body is larger than this server accepts (${limit} bytes)` },
    });
  };

  it('refuses a declared Content-Length over the limit before reading the body', async () => {
    const { response, request } = rawRequest(server.url, {
      path: '/v1/detect',
      headers: { 'Content-Length': String(big.length) },
      chunks: [],
      finish: false,
    });
    expectTooLarge(await response);
    request.destroy();
  });

  it('stops a chunked body (no Content-Length) once it passes the limit', async () => {
    const chunks = Array.from({ length: 20 }, (_, i) => big.subarray(i * 10_240, (i + 1) * 10_240));
    const { response } = rawRequest(server.url, { path: '/v1/detect', chunks, pauseMs: 5 });
    expectTooLarge(await response);
  });

  it('counts the whole multipart body, whatever the parts', async () => {
    const { body, contentType } = multipart([
      { name: 'other', value: big, filename: 'x.bin' },
      { name: 'image', value: landscape, filename: 'x.jpg' },
    ]);
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
