import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Detector } from '../../src/detection/detector';
import { ApiKeys, bearerToken } from '../../src/server/auth';
import { IMAGES, loadFixtureDetector, multipart, startTestServer, type ErrorBody, type TestServer } from '../helpers/server';

describe('API keys', () => {
  it('accepts exactly the configured keys', () => {
    const keys = new ApiKeys(['first-key-0001', 'second-key-0002']);
    expect(keys.open).toBe(false);
    expect(keys.accepts('first-key-0001')).toBe(true);
    expect(keys.accepts('second-key-0002')).toBe(true);
    expect(keys.accepts('first-key-000')).toBe(false);
    expect(keys.accepts('first-key-00011')).toBe(false);
    expect(keys.accepts('')).toBe(false);
    expect(keys.accepts(undefined)).toBe(false);
  });

  it('is open with no keys, yet accepts no key as valid', () => {
    const keys = new ApiKeys([]);
    expect(keys.open).toBe(true);
    expect(keys.accepts('anything')).toBe(false);
  });

  it('reads Bearer tokens, case-insensitively, and nothing else', () => {
    expect(bearerToken({ authorization: 'Bearer abc.def' })).toBe('abc.def');
    expect(bearerToken({ authorization: 'bearer   abc ' })).toBe('abc');
    expect(bearerToken({ authorization: 'Basic dXNlcjpwYXNz' })).toBeUndefined();
    expect(bearerToken({ authorization: 'Bearer a b' })).toBeUndefined();
    expect(bearerToken({})).toBeUndefined();
  });
});

describe('API keys on a running server', () => {
  const keys: [string, string] = ['camera-key-0001', 'grafana-key-0002'];
  const landscape = readFileSync(path.join(IMAGES, 'landscape.jpg'));
  let detector: Detector;
  let locked: TestServer;
  let openMetrics: TestServer;

  beforeAll(async () => {
    detector = await loadFixtureDetector();
    locked = await startTestServer(detector, { apiKeys: keys });
    openMetrics = await startTestServer(detector, { apiKeys: keys, metricsAuth: false });
  });
  afterAll(async () => {
    await locked?.shutdown();
    await openMetrics?.shutdown();
    await detector?.close();
  });

  it('refuses /v1/detect without a key or with a wrong one (401 + WWW-Authenticate), accepts every configured key', async () => {
    const wrong: Array<Record<string, string>> = [
      {},
      { Authorization: 'Bearer camera-key-0003' },
      { Authorization: 'Basic Y2FtZXJhLWtleS0wMDAx' },
      { Authorization: 'camera-key-0001' },
    ];
    for (const headers of wrong) {
      const response = await fetch(`${locked.url}/v1/detect`, { method: 'POST', body: landscape, headers });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
      expect(((await response.json()) as ErrorBody).error.code).toBe('UNAUTHORIZED');
    }
    for (const key of keys) {
      const response = await fetch(`${locked.url}/v1/detect`, {
        method: 'POST',
        body: landscape,
        headers: { Authorization: `Bearer ${key}` },
      });
      expect(response.status).toBe(200);
    }
    const models = await fetch(`${locked.url}/v1/models`);
    expect(models.status).toBe(401);
  });

  it('takes the DeepStack api_key form field or the Bearer header on the DeepStack routes', async () => {
    const send = (extra: Array<{ name: string; value: string }>, headers: Record<string, string> = {}) => {
      const { body, contentType } = multipart([{ name: 'image', value: landscape, filename: 'image' }, ...extra]);
      return fetch(`${locked.url}/v1/vision/detection`, { method: 'POST', body, headers: { 'Content-Type': contentType, ...headers } });
    };
    const missing = await send([]);
    expect(missing.status).toBe(401);
    expect(await missing.json()).toEqual({ success: false, error: 'Incorrect api key', code: 401 });
    expect((await send([{ name: 'api_key', value: 'wrong-key-0000' }])).status).toBe(401);
    expect((await send([{ name: 'api_key', value: keys[0] }])).status).toBe(200);
    expect((await send([], { Authorization: `Bearer ${keys[1]}` })).status).toBe(200);
    // a wrong header is refused even with a right form key: the header is checked first
    expect((await send([{ name: 'api_key', value: keys[0] }], { Authorization: 'Bearer wrong-key-0000' })).status).toBe(401);
  });

  it('keeps health, readiness, ping, the demo page and the OpenAPI document open', async () => {
    for (const route of ['/healthz', '/readyz', '/v1/status/ping', '/', '/openapi.json']) {
      expect([route, (await fetch(`${locked.url}${route}`)).status]).toEqual([route, 200]);
    }
  });

  it('protects /metrics unless metrics auth is off', async () => {
    expect((await fetch(`${locked.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${locked.url}/metrics`, { headers: { Authorization: `Bearer ${keys[1]}` } })).status).toBe(200);
    expect((await fetch(`${openMetrics.url}/metrics`)).status).toBe(200);
  });

  it('never writes a key into the logs', () => {
    const all = locked.rawLogs.join('');
    for (const key of keys) expect(all).not.toContain(key);
  });
});
