/**
 * Graceful shutdown of a real listening server: connections that never sent a request, the drain
 * delay (not ready, still serving), and Expect: 100-continue with an over-limit body.
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { IMAGES, startTestServer, waitFor, type TestServer, useFixtureDetector } from '../helpers/server';

const tiny = readFileSync(path.join(IMAGES, 'tiny.png'));
const fixture = useFixtureDetector();

/** A TCP connection to the server, connected, with every byte it receives collected. */
async function connect(server: TestServer): Promise<{ socket: net.Socket; received: () => string; closed: Promise<void> }> {
  const { port } = new URL(server.url);
  const socket = net.connect(Number(port), '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, received: () => Buffer.concat(chunks).toString('latin1'), closed };
}

describe('shutdown with connections that never sent a request', () => {
  it('closes them and reports a clean drain instead of waiting out the grace period', async () => {
    const server = await startTestServer(fixture.detector, { shutdownGraceMs: 60_000 });
    const preconnects = await Promise.all([connect(server), connect(server)]);
    // a kept-alive connection that already got its answer is closed too
    const served = await fetch(`${server.url}/healthz`);
    expect(served.status).toBe(200);
    const drained = await server.shutdown();
    expect(drained).toBe(true);
    await Promise.all(preconnects.map((p) => p.closed));
    expect(server.logs.some((l) => l.msg === 'grace period over: closing the remaining connections')).toBe(false);
  });
});

describe('drain delay', () => {
  it('after shutdown starts: not ready, still serves new connections; then stops accepting and finishes in-flight work', async () => {
    const server = await startTestServer(fixture.detector, { drainDelayMs: 4_000 });
    const shutdown = server.shutdown();
    expect(server.detection.lifecycle.servingWhileDraining).toBe(true);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'draining' });
    const detect = await fetch(`${server.url}/v1/detect`, { method: 'POST', body: tiny });
    // the answer came within the delay, and asks the client to go elsewhere next time
    expect(server.detection.lifecycle.servingWhileDraining).toBe(true);
    expect(detect.status).toBe(200);
    expect(detect.headers.get('connection')).toBe('close');
    expect(await shutdown).toBe(true);
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
    expect(server.logs.map((l) => l.msg)).toEqual(
      expect.arrayContaining([
        'draining: not ready, still accepting for the drain delay',
        'draining: refusing new requests, waiting for in-flight ones',
      ]),
    );
  });
});

describe('Expect: 100-continue', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(fixture.detector, { maxBodyBytes: 100_000 });
  });
  afterAll(async () => {
    await server.shutdown();
  });

  it('refuses an over-limit Content-Length with 413 and never sends 100 Continue', async () => {
    const { socket, received, closed } = await connect(server);
    socket.write(
      `POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 100001\r\nExpect: 100-continue\r\n\r\n`,
    );
    await waitFor(() => received().includes('\r\n\r\n'), 10_000, 'the answer to the headers');
    expect(received().startsWith('HTTP/1.1 413')).toBe(true);
    expect(received()).not.toContain('100 Continue');
    expect(received()).toContain('BODY_TOO_LARGE');
    socket.end();
    await closed;
  });

  it('sends 100 Continue for a body within the limit, then answers it', async () => {
    const { socket, received, closed } = await connect(server);
    socket.write(
      [
        'POST /v1/detect HTTP/1.1',
        'Host: x',
        'Content-Type: image/png',
        `Content-Length: ${tiny.length}`,
        'Expect: 100-continue',
        'Connection: close',
        '',
        '',
      ].join('\r\n'),
    );
    await waitFor(() => received().startsWith('HTTP/1.1 100 Continue\r\n\r\n'), 10_000, '100 Continue');
    socket.write(tiny);
    await closed;
    expect(received()).toContain('HTTP/1.1 200 OK');
  });
});
