/**
 * API keys under attack, against a real listening server: keys in encoded query names never
 * reach the log, and uploads that carry their key in the body cannot lock out keyed clients.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { redactUrl } from '../../src/server/logging';
import { IMAGES, metricValue, multipart, rawRequest, waitFor, type ErrorBody, useFixtureServer } from '../helpers/server';

const key = 'camera-key-0001';
const tiny = readFileSync(path.join(IMAGES, 'tiny.png'));
const fixture = useFixtureServer({ apiKeys: [key], concurrency: 1, queueSize: 1, requestTimeoutMs: 60_000 });

describe('API keys in the query string', () => {
  it.each(['api%5Fkey', 'api_k%65y', '%61pi_key', 'API_KEY', 'api%5fkey'])(
    'redacts ?%s=KEY in every logged URL, whether or not it authenticated',
    async (name) => {
      const before = fixture.server.rawLogs.length;
      const response = await fetch(`${fixture.server.url}/v1/vision/detection?${name}=${key}`, { method: 'POST', body: tiny });
      expect([200, 401]).toContain(response.status);
      await waitFor(
        () => fixture.server.rawLogs.slice(before).some((l) => l.includes('/v1/vision/detection')),
        5_000,
        'the access log line',
      );
      const lines = fixture.server.rawLogs.slice(before).join('');
      expect(lines).not.toContain(key);
      expect(lines).toContain(`${name}=[redacted]`);
    },
  );

  it('an encoded name authenticates exactly as the plain one (so redaction is what keeps it out of the log)', async () => {
    const response = await fetch(`${fixture.server.url}/v1/vision/detection?api%5Fkey=${key}`, { method: 'POST', body: tiny });
    expect(response.status).toBe(200);
  });

  it('leaves other parameters and URLs without a query alone', () => {
    expect(redactUrl('/v1/detect')).toBe('/v1/detect');
    expect(redactUrl('/v1/detect?score_threshold=0.5&token=abc&x')).toBe('/v1/detect?score_threshold=0.5&token=[redacted]&x');
    expect(redactUrl('/v1/detect?%E0%A4%A=1&k%65y=s')).toBe('/v1/detect?%E0%A4%A=1&k%65y=[redacted]');
  });
});

describe('uploads with the key in the body', () => {
  /** A DeepStack upload without Authorization that declares a body and sends only its start. */
  function slowUpload(): ReturnType<typeof rawRequest> {
    const { body, contentType } = multipart([
      { name: 'api_key', value: key },
      { name: 'image', value: tiny, filename: 'tiny.png', contentType: 'image/png' },
    ]);
    return rawRequest(fixture.server.url, {
      path: '/v1/vision/detection',
      headers: { 'Content-Type': contentType, 'Content-Length': String(body.length) },
      chunks: [body.subarray(0, 10)],
      finish: false,
    });
  }

  it('wait in a pool of their own: a Bearer request is served while they fill it, and the slow ones are cut', async () => {
    const slow = [slowUpload(), slowUpload()];
    await waitFor(() => fixture.server.detection.inference.unverifiedUploads === 2, 10_000, 'both slow uploads to be admitted');
    expect(fixture.server.detection.inference.admitted).toBe(0);
    const gauges = await (await fetch(`${fixture.server.url}/metrics`, { headers: { Authorization: `Bearer ${key}` } })).text();
    expect(metricValue(gauges, 'cpwc_admitted_requests{pool="key_in_body"}')).toBe(2);
    expect(metricValue(gauges, 'cpwc_admitted_requests{pool="authenticated"}')).toBe(0);

    // a third keyless upload finds that pool full
    const third = slowUpload();
    const refused = await third.response;
    expect(refused.status).toBe(503);
    expect((JSON.parse(refused.body.toString()) as { error: string }).error).toMatch(/API key in the body/);

    const keyed = await fetch(`${fixture.server.url}/v1/detect`, {
      method: 'POST',
      body: tiny,
      headers: { Authorization: `Bearer ${key}` },
    });
    expect(keyed.status).toBe(200);

    // under the minimum rate, the slow uploads are cut with 408 and give their places back
    for (const upload of slow) {
      const answer = await upload.response;
      expect(answer.status).toBe(408);
      expect((JSON.parse(answer.body.toString()) as { error: string }).error).toMatch(/bytes\/s/);
      upload.request.destroy();
    }
    await waitFor(() => fixture.server.detection.inference.unverifiedUploads === 0, 5_000, 'the pool to empty');
  });

  it('a complete upload with the right form key is served, a wrong one is 401, and neither keeps a place', async () => {
    const send = async (apiKey: string): Promise<Response> => {
      const { body, contentType } = multipart([
        { name: 'image', value: tiny, filename: 'tiny.png', contentType: 'image/png' },
        { name: 'api_key', value: apiKey },
      ]);
      return fetch(`${fixture.server.url}/v1/vision/detection`, { method: 'POST', body, headers: { 'Content-Type': contentType } });
    };
    expect((await send(key)).status).toBe(200);
    const wrong = await send('wrong-key-0000');
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as unknown as { error: string }).error).toBe('Incorrect api key');
    await waitFor(
      () => fixture.server.detection.inference.unverifiedUploads === 0 && fixture.server.detection.inference.admitted === 0,
      5_000,
      'every place to be given back',
    );
  });

  it('a right key in the query string is checked before the body, like a Bearer header', async () => {
    const { response, request } = rawRequest(fixture.server.url, {
      path: `/v1/vision/detection?api_key=${key}`,
      headers: { 'Content-Type': 'image/png', 'Content-Length': String(tiny.length) },
      chunks: [tiny.subarray(0, 10)],
      finish: false,
    });
    await waitFor(() => fixture.server.detection.inference.admitted === 1, 10_000, 'the upload to be admitted as authenticated');
    expect(fixture.server.detection.inference.unverifiedUploads).toBe(0);
    request.end(tiny.subarray(10));
    expect((await response).status).toBe(200);
  });

  it('a native-API request without a key is still refused before its body is read', async () => {
    const response = await fetch(`${fixture.server.url}/v1/detect`, { method: 'POST', body: tiny });
    expect(response.status).toBe(401);
    expect(((await response.json()) as ErrorBody).error.code).toBe('UNAUTHORIZED');
  });
});
