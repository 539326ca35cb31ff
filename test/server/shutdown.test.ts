/**
 * The real CLI (`node dist/cli/index.js serve`) as a child process: start-up, --help, bad
 * configuration, and graceful shutdown on SIGTERM with a request in flight.
 * Needs `npm run build` first (npm test does it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { FIXTURE_MODEL, IMAGES, REPO_ROOT, metricValue, rawRequest } from '../helpers/server';

const CLI = path.join(REPO_ROOT, 'dist', 'cli', 'index.js');
const landscape = readFileSync(path.join(IMAGES, 'landscape.jpg'));

interface Child {
  process: ChildProcess;
  lines: Array<Record<string, unknown>>;
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitForLog(message: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

function startCli(args: string[], env: Record<string, string> = {}): Child {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  const stderr: string[] = [];
  const waiters: Array<() => void> = [];
  let buffered = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ msg: line });
      }
      for (const wake of waiters.splice(0)) wake();
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      for (const wake of waiters.splice(0)) wake();
      resolve({ code, signal });
    });
  });
  const waitForLog = async (message: string, timeoutMs = 30_000): Promise<Record<string, unknown>> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = lines.find((l) => l.msg === message);
      if (found !== undefined) return found;
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`no log '${message}' (exit ${child.exitCode}); stdout: ${JSON.stringify(lines)}; stderr: ${stderr.join('')}`);
      }
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  };
  return { process: child, lines, stderr, exited, waitForLog };
}

/** Waits until the server's own gauge counts `count` admitted detection requests (the upload has reached the handler). */
async function waitForAdmitted(url: string, count: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await (await fetch(`${url}/metrics`)).text();
    if (metricValue(text, 'cpwc_admitted_requests{pool="authenticated"}') === count) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${count} admitted request(s)`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const running: Child[] = [];
function track(child: Child): Child {
  running.push(child);
  return child;
}

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' first (npm test does)`);
});

afterEach(() => {
  for (const child of running.splice(0)) {
    if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
  }
});

const serveArgs = ['--model', FIXTURE_MODEL, '--host', '127.0.0.1', '--port', '0', '--threads', '1'];

describe('cpwc-detect serve (child process)', () => {
  it('finishes an in-flight request after SIGTERM, refuses new connections, and exits 0', async () => {
    const child = track(startCli(serveArgs));
    const { url } = (await child.waitForLog('listening; warming up')) as { url: string };
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await child.waitForLog('ready');
    expect((await fetch(`${url}/readyz`)).status).toBe(200);

    // half the upload is sent: the request is in flight when the signal arrives
    const { response, request } = rawRequest(url, {
      path: '/v1/detect',
      headers: { 'Content-Length': String(landscape.length), 'Content-Type': 'image/jpeg' },
      chunks: [landscape.subarray(0, 20_000)],
      finish: false,
    });
    await waitForAdmitted(url, 1);
    child.process.kill('SIGTERM');
    await child.waitForLog('draining: refusing new requests, waiting for in-flight ones');
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();

    request.end(landscape.subarray(20_000));
    const answer = await response;
    expect(answer.status).toBe(200);
    const body = JSON.parse(answer.body.toString()) as { width: number; height: number; detections: unknown[] };
    expect([body.width, body.height]).toEqual([600, 400]);

    const { code } = await child.exited;
    expect(code).toBe(0);
    expect(child.lines.find((l) => l.msg === 'stopped')).toMatchObject({ drained: true });
  });

  it('exits 0 with drained true when an idle preconnected socket is all that is open (was: the grace period, then exit 1)', async () => {
    const child = track(startCli(serveArgs));
    const { url } = (await child.waitForLog('listening; warming up')) as { url: string };
    await child.waitForLog('ready');
    const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    child.process.kill('SIGTERM');
    const { code } = await child.exited;
    await closed;
    expect(code).toBe(0);
    expect(child.lines.find((l) => l.msg === 'stopped')).toMatchObject({ drained: true });
    expect(child.lines.some((l) => l.msg === 'grace period over: closing the remaining connections')).toBe(false);
  });

  it('with --drain-delay-ms, answers a request on a connection made before SIGTERM and sent after it, then exits 0', async () => {
    const child = track(startCli([...serveArgs, '--drain-delay-ms', '3000']));
    const { url } = (await child.waitForLog('listening; warming up')) as { url: string };
    await child.waitForLog('ready');
    // connected (accepted by the kernel) before the signal; the request itself comes after it
    const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (c: Buffer) => received.push(c));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    child.process.kill('SIGTERM');
    await child.waitForLog('draining: not ready, still accepting for the drain delay');
    expect((await fetch(`${url}/readyz`)).status).toBe(503);
    socket.write(`POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: ${landscape.length}\r\n\r\n`);
    socket.write(landscape);
    await closed;
    const answer = Buffer.concat(received).toString('latin1');
    expect(answer.startsWith('HTTP/1.1 200 OK')).toBe(true);
    expect(answer).toMatch(/\r\nConnection: close\r\n/i);
    const { code } = await child.exited;
    expect(code).toBe(0);
    expect(child.lines.find((l) => l.msg === 'stopped')).toMatchObject({ drained: true });
  });

  it('cuts a request that outlives the grace period and exits 1 within it', async () => {
    const child = track(startCli([...serveArgs, '--shutdown-grace-ms', '300']));
    const { url } = (await child.waitForLog('listening; warming up')) as { url: string };
    await child.waitForLog('ready');
    const { response } = rawRequest(url, {
      path: '/v1/detect',
      headers: { 'Content-Length': String(landscape.length) },
      chunks: [landscape.subarray(0, 1000)],
      finish: false,
    });
    await waitForAdmitted(url, 1);
    child.process.kill('SIGTERM');
    await expect(response).rejects.toThrow();
    const { code } = await child.exited;
    // cut by the grace period (not by the request's own deadline, 30 s by default)
    expect(code).toBe(1);
    expect(child.lines.some((l) => l.msg === 'grace period over: closing the remaining connections')).toBe(true);
    expect(child.lines.find((l) => l.msg === 'stopped')).toMatchObject({ drained: false });
  });

  it('prints --help with every setting and exits 0', async () => {
    const child = track(startCli(['--help']));
    const { code } = await child.exited;
    expect(code).toBe(0);
    const text = child.lines.map((l) => l.msg).join('\n');
    for (const name of [
      'CPWC_PORT',
      'CPWC_HOST',
      'CPWC_MODEL_DIR',
      'CPWC_THREADS',
      'CPWC_CONCURRENCY',
      'CPWC_QUEUE_SIZE',
      'CPWC_REQUEST_TIMEOUT_MS',
      'CPWC_MAX_BODY_BYTES',
      'CPWC_MAX_PIXELS',
      'CPWC_SCORE_THRESHOLD',
      'CPWC_API_KEYS',
      'CPWC_METRICS_AUTH',
      'CPWC_LOG_LEVEL',
      'CPWC_SHUTDOWN_GRACE_MS',
      'CPWC_DRAIN_DELAY_MS',
    ]) {
      expect(text).toContain(name);
    }
  });

  it('refuses an invalid setting with exit 2 and a message naming it', async () => {
    const child = track(startCli(serveArgs, { CPWC_CONCURRENCY: 'lots' }));
    const { code } = await child.exited;
    expect(code).toBe(2);
    expect(child.stderr.join('')).toContain("CPWC_CONCURRENCY must be an integer in [1, 64], got 'lots'");
  });

  it('refuses a missing model directory with exit 1 and a clear message', async () => {
    const child = track(startCli(['--model', path.join(REPO_ROOT, 'no-such-model'), '--port', '0']));
    const { code } = await child.exited;
    expect(code).toBe(1);
    expect(child.stderr.join('')).toContain(`cannot load the model in '${path.join(REPO_ROOT, 'no-such-model')}'`);
  });

  // Only where onnxruntime-node's CUDA provider is not installed (`npm ci --onnxruntime-node-install=cuda12` adds it).
  const cudaMissing = !existsSync(
    path.join(
      path.dirname(require.resolve('onnxruntime-node/package.json')),
      'bin',
      'napi-v6',
      'linux',
      'x64',
      'libonnxruntime_providers_cuda.so',
    ),
  );
  (cudaMissing ? it : it.skip)(
    'refuses an execution provider that cannot start with exit 1 and EXECUTION_PROVIDER_UNAVAILABLE',
    async () => {
      const child = track(startCli(['--port', '0', '--execution-provider', 'cuda']));
      const { code } = await child.exited;
      expect(code).toBe(1);
      expect(child.stderr.join('')).toContain(': EXECUTION_PROVIDER_UNAVAILABLE: the cuda execution provider is not available');
    },
  );
});
