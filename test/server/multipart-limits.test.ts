/**
 * Multipart bodies over the parser's limits and with repeated fields, against a real listening
 * server: a prompt typed answer, the admission place given back, the next request served.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  IMAGES,
  multipart,
  rawRequest,
  startTestServer,
  waitFor,
  type ErrorBody,
  type TestServer,
  useFixtureServer,
} from '../helpers/server';

const tiny = readFileSync(path.join(IMAGES, 'tiny.png'));
// a long deadline: an answer must come from the limit, not from the 504
const fixture = useFixtureServer({ concurrency: 1, queueSize: 1, requestTimeoutMs: 60_000 });

type Part = Parameters<typeof multipart>[0][number];

function textFields(count: number): Part[] {
  return Array.from({ length: count }, (_, i) => ({ name: `f${i}`, value: 'x' }));
}

async function post(route: string, parts: Part[]): Promise<{ status: number; body: ErrorBody }> {
  const { body, contentType } = multipart(parts);
  const response = await fetch(`${fixture.server.url}${route}`, { method: 'POST', body, headers: { 'Content-Type': contentType } });
  return { status: response.status, body: (await response.json()) as ErrorBody };
}

describe('multipart limits', () => {
  const image: Part = { name: 'image', value: tiny, filename: 'tiny.png', contentType: 'image/png' };

  it('serves 31 extra text fields', async () => {
    const { status } = await post('/v1/detect', [image, ...textFields(31)]);
    expect(status).toBe(200);
  });

  it.each([
    ['33 text fields', [image, ...textFields(33)], /form fields \(at most 32\)/],
    [
      '5 file parts',
      [image, ...Array.from({ length: 4 }, (_, i) => ({ name: `file${i}`, value: tiny, filename: `${i}.png` }))],
      /file parts \(at most 4\)/,
    ],
    [
      '1000 parts',
      [image, ...Array.from({ length: 999 }, (_, i) => ({ name: `f${i % 30}x${i}`, value: 'x' }))],
      /(form fields \(at most 32\)|parts \(at most 64\))/,
    ],
  ])('answers %s with 413 MULTIPART_TOO_MANY_PARTS naming the limit, and gives the admission place back', async (_name, parts, message) => {
    const { status, body } = await post('/v1/detect', parts);
    expect(status).toBe(413);
    expect(body.error.code).toBe('MULTIPART_TOO_MANY_PARTS');
    expect(body.error.message).toMatch(message);
    await waitFor(() => fixture.server.detection.inference.admitted === 0, 5_000, 'the admission place to be given back');
  });

  it('still serves detections after more over-limit requests than there are admission places', async () => {
    const over = [image, ...textFields(40)];
    const answers = await Promise.all(Array.from({ length: 9 }, () => post('/v1/detect', over)));
    expect(answers.map((a) => a.status)).toEqual(Array(9).fill(413));
    await waitFor(() => fixture.server.detection.inference.admitted === 0, 5_000, 'every admission place to be given back');
    expect((await post('/v1/detect', [image])).status).toBe(200);
  });
});

describe('repeated multipart fields', () => {
  const image: Part = { name: 'image', value: tiny, filename: 'tiny.png', contentType: 'image/png' };

  it.each([
    ['score_threshold', '/v1/detect', [image, { name: 'score_threshold', value: '0.5' }, { name: 'score_threshold', value: '0.9' }]],
    ['image (two files)', '/v1/detect', [image, image]],
    ['image (a file and a text field)', '/v1/detect', [image, { name: 'image', value: 'x' }]],
    ['api_key', '/v1/vision/detection', [image, { name: 'api_key', value: 'k' }, { name: 'api_key', value: 'k' }]],
    ['min_confidence', '/v1/vision/detection', [image, { name: 'min_confidence', value: '0.1' }, { name: 'min_confidence', value: '0.2' }]],
  ])('refuses a repeated %s with 400 INVALID_PARAMETER, as a repeated query parameter is', async (name, route, parts) => {
    const { status, body } = await post(route, parts);
    expect(status).toBe(400);
    const field = name.split(' ')[0];
    if (route === '/v1/detect') {
      expect(body.error.code).toBe('INVALID_PARAMETER');
      expect(body.error.message).toContain(`'${field}'`);
    } else {
      expect((body as unknown as { error: string }).error).toContain(`'${field}'`);
    }
  });

  it('refuses a repeated query parameter with the same code', async () => {
    const response = await fetch(`${fixture.server.url}/v1/detect?score_threshold=0.5&score_threshold=0.9`, { method: 'POST', body: tiny });
    expect(response.status).toBe(400);
    expect(((await response.json()) as ErrorBody).error.code).toBe('INVALID_PARAMETER');
  });
});

describe('multipart uploads and the deadline', () => {
  let short: TestServer;
  beforeAll(async () => {
    short = await startTestServer(fixture.detector, { requestTimeoutMs: 1_000 });
  });
  afterAll(async () => {
    await short?.shutdown();
  });

  function unfinished(parts: Part[], cut: number): ReturnType<typeof rawRequest> {
    const { body, contentType } = multipart(parts);
    return rawRequest(short.url, {
      path: '/v1/detect',
      headers: { 'Content-Type': contentType, 'Content-Length': String(body.length) },
      chunks: [body.subarray(0, body.length - cut)],
      finish: false,
    });
  }

  it('answers 413 as soon as a limit is reached, while the rest of the body is still to come', async () => {
    const { response, request } = unfinished([...textFields(40), { name: 'image', value: tiny, filename: 'tiny.png' }], 100);
    const answer = await response;
    request.destroy();
    expect(answer.status).toBe(413);
    expect((JSON.parse(answer.body.toString()) as ErrorBody).error.code).toBe('MULTIPART_TOO_MANY_PARTS');
  });

  it('answers 504 DEADLINE_EXCEEDED when a multipart upload stalls, and gives its place back', async () => {
    const { response, request } = unfinished([{ name: 'image', value: tiny, filename: 'tiny.png' }], 1_000);
    const answer = await response;
    request.destroy();
    expect(answer.status).toBe(504);
    expect((JSON.parse(answer.body.toString()) as ErrorBody).error.code).toBe('DEADLINE_EXCEEDED');
    await waitFor(() => short.detection.inference.admitted === 0, 5_000, 'the admission place to be given back');
  });
});
