/** Shared set-up for the server tests: the tiny fixture model behind a real listening server. */
import path from 'node:path';
import { existsSync } from 'node:fs';
import type { DestinationStream, Logger } from 'pino';
import { Detector } from '../../src/detection/detector';
import type { Detection } from '../../src/detection/types';
import { defaultConfig, type ServerConfig } from '../../src/server/config';
import { createLogger } from '../../src/server/logging';
import { ModelRepository } from '../../src/server/model-repository';
import { createRenderer } from '../../src/server/renderer';
import { startServer, type RunningServer } from '../../src/server/server';
import type { ServedDetector } from '../../src/server/served-model';

/** The tiny fixture model; CPWC_TEST_MODEL_DIR runs the server tests against another model directory. */
export const FIXTURE_MODEL = process.env.CPWC_TEST_MODEL_DIR ?? path.join(__dirname, '..', 'fixtures', 'models', 'tiny-fpn');
export const IMAGES = path.join(__dirname, '..', 'fixtures', 'images');
export const REPO_ROOT = path.join(__dirname, '..', '..');

export function loadFixtureDetector(): Promise<Detector> {
  if (!existsSync(path.join(FIXTURE_MODEL, 'model.json'))) {
    throw new Error(`the fixture model is missing: ${FIXTURE_MODEL} (made by npm run export; see test/fixtures/models)`);
  }
  return Detector.load(FIXTURE_MODEL, { intraOpThreads: 1 });
}

export function testConfig(overrides: Partial<ServerConfig> = {}): ServerConfig {
  return { ...defaultConfig(), modelDir: FIXTURE_MODEL, host: '127.0.0.1', port: 0, intraOpThreads: 1, logLevel: 'info', ...overrides };
}

export interface TestServer extends RunningServer {
  /** Every log line the server wrote, parsed. */
  logs: Array<Record<string, unknown>>;
  rawLogs: string[];
}

/** A listening server on 127.0.0.1:0, warmed up (ready) unless `warm` is false. */
export async function startTestServer(detector: ServedDetector, overrides: Partial<ServerConfig> = {}, warm = true): Promise<TestServer> {
  const config = testConfig(overrides);
  const rawLogs: string[] = [];
  const logs: Array<Record<string, unknown>> = [];
  const destination: DestinationStream = {
    write(line: string): void {
      rawLogs.push(line);
      logs.push(JSON.parse(line) as Record<string, unknown>);
    },
  };
  const running = await startServer({
    detector,
    config,
    logger: createLogger(config.logLevel, destination),
    render: createRenderer(config.maxPixels),
    modelAliases: [path.basename(FIXTURE_MODEL)],
    processMetrics: true,
  });
  if (warm) await running.detection.warmUp();
  return Object.assign(running, { logs, rawLogs });
}

/**
 * A listening server over the model repository at `root` (polling off; `overrides` on testConfig), every model
 * loaded with one thread, warmed up and every load settled; shut down again when that fails.
 */
export async function startRepositoryServer(root: string, overrides: Partial<ServerConfig>, logger: Logger): Promise<RunningServer> {
  const config = testConfig({ modelRepository: root, repositoryPollS: 0, ...overrides });
  const running = await startServer({
    config,
    logger,
    processMetrics: false,
    repository: ({ inference, metrics, logger: log }) =>
      new ModelRepository({
        root,
        defaultModel: config.defaultModel,
        load: (dir) => Detector.load(dir, { intraOpThreads: 1 }),
        inference,
        metrics,
        logger: log,
      }),
  });
  try {
    await running.detection.warmUp();
    await running.detection.repository?.whenSettled();
  } catch (err) {
    await running.shutdown();
    throw err;
  }
  return running;
}

/** What `useFixtureServer` started; reading a field before its beforeAll has run fails with a clear message. */
export interface FixtureServer {
  readonly detector: Detector;
  readonly server: TestServer;
}

/** What `useFixtureDetector` loaded. */
export interface FixtureDetector {
  readonly detector: Detector;
}

/** Set in beforeAll, read in the tests: a clear failure instead of `undefined` when read too early. */
function started<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is not started yet: read it inside a test or hook, after useFixture*'s beforeAll`);
  return value;
}

/**
 * Registers a beforeAll that loads the fixture detector and an afterAll that closes it, in the calling
 * file or describe block.
 *
 * @example
 * const fixture = useFixtureDetector();
 * it('…', async () => { await startTestServer(fixture.detector, { concurrency: 1 }); });
 */
export function useFixtureDetector(): FixtureDetector {
  let detector: Detector | undefined;
  beforeAll(async () => {
    detector = await loadFixtureDetector();
  });
  afterAll(async () => {
    await detector?.close();
  });
  return {
    get detector() {
      return started(detector, 'the fixture detector');
    },
  };
}

/** What `useFixtureServers` started: one detector, and a server per name. */
export interface FixtureServers<K extends string> {
  readonly detector: Detector;
  readonly servers: Readonly<Record<K, TestServer>>;
}

/**
 * Registers a beforeAll that loads the fixture detector and starts a warmed-up test server on it for each
 * entry of `configs` (its overrides), and an afterAll that shuts them all down, in the calling file or
 * describe block.
 *
 * @example
 * const fixture = useFixtureServers({ open: {}, locked: { apiKeys: ['key-0001'] } });
 * it('…', async () => { await fetch(`${fixture.servers.locked.url}/v1/models`); });
 */
export function useFixtureServers<K extends string>(configs: Record<K, Partial<ServerConfig>>): FixtureServers<K> {
  const names = Object.keys(configs) as K[];
  let detector: Detector | undefined;
  const running = new Map<K, TestServer>();
  beforeAll(async () => {
    detector = await loadFixtureDetector();
    for (const name of names) running.set(name, await startTestServer(detector, configs[name]));
  });
  afterAll(async () => {
    for (const server of running.values()) await server.shutdown();
    await detector?.close();
  });
  const servers = {} as Record<K, TestServer>;
  for (const name of names) {
    Object.defineProperty(servers, name, { enumerable: true, get: () => started(running.get(name), `the fixture server '${name}'`) });
  }
  return {
    get detector() {
      return started(detector, 'the fixture detector');
    },
    servers,
  };
}

/**
 * Registers a beforeAll that loads the fixture detector and starts a warmed-up test server on it (with
 * `overrides`), and an afterAll that shuts both down, in the calling file or describe block.
 *
 * @example
 * const fixture = useFixtureServer({ concurrency: 1 });
 * it('…', async () => { await fetch(`${fixture.server.url}/health`); });
 */
export function useFixtureServer(overrides: Partial<ServerConfig> = {}): FixtureServer {
  const fixture = useFixtureServers({ server: overrides });
  return {
    get detector() {
      return fixture.detector;
    },
    get server() {
      return fixture.servers.server;
    },
  };
}

/** POST /v1/detect of `image` with API key `key` (and `query`); expects 200 and returns the detections. */
export async function detectOverHttp(server: TestServer, image: Uint8Array, key: string, query = ''): Promise<Detection[]> {
  const response = await fetch(`${server.url}/v1/detect${query}`, {
    method: 'POST',
    body: image,
    headers: { Authorization: `Bearer ${key}` },
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { detections: Detection[] }).detections;
}

/**
 * Native detections as a DeepStack client must see them: labels lower-case, pixel coordinates rounded
 * (written here from DeepStack's documented format, not taken from the server's code).
 */
export function deepstackRounded(detections: readonly Detection[]): Record<string, unknown>[] {
  return detections.map((d) => ({
    label: d.label.toLowerCase(),
    confidence: d.score,
    x_min: Math.round(d.box.xmin),
    y_min: Math.round(d.box.ymin),
    x_max: Math.round(d.box.xmax),
    y_max: Math.round(d.box.ymax),
  }));
}

export interface ErrorBody {
  error: { code: string; message: string };
}

/** A multipart/form-data body; `boundary` defaults to a random one (seeded callers such as the fuzz pass their own). */
export function multipart(
  parts: Array<{ name: string; value: Uint8Array | string; filename?: string; contentType?: string }>,
  boundary = `----cpwc-test-${Math.random().toString(16).slice(2)}`,
): {
  body: Buffer;
  contentType: string;
} {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    let header = `--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"`;
    if (part.filename !== undefined) header += `; filename="${part.filename}"`;
    header += '\r\n';
    if (part.contentType !== undefined) header += `Content-Type: ${part.contentType}\r\n`;
    chunks.push(Buffer.from(`${header}\r\n`, 'latin1'), Buffer.from(part.value), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** Polls `condition` every 5 ms until it holds (or fails the test after `timeoutMs`). */
export async function waitFor(condition: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The value of one Prometheus sample line (`name{labels} value`), or undefined. */
export function metricValue(text: string, sample: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
  }
  return undefined;
}

export interface RawResponse {
  status: number;
  headers: import('node:http').IncomingHttpHeaders;
  body: Buffer;
}

/**
 * A request over node:http that writes `chunks` one by one (`pauseMs` apart), so tests control
 * exactly what the server has received when. Without `contentLength` the body is chunked.
 * Resolves with the response even if the server answered before the body was fully sent.
 */
export function rawRequest(
  url: string,
  options: { method?: string; path: string; headers?: Record<string, string>; chunks?: Buffer[]; pauseMs?: number; finish?: boolean },
): { response: Promise<RawResponse>; request: import('node:http').ClientRequest } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const http = require('node:http') as typeof import('node:http');
  const request = http.request(`${url}${options.path}`, { method: options.method ?? 'POST', headers: options.headers, agent: false });
  const response = new Promise<RawResponse>((resolve, reject) => {
    let answered = false;
    request.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    request.on('error', (err) => {
      if (!answered) reject(err);
    });
  });
  // send the headers now, even before any body byte
  request.flushHeaders();
  void (async () => {
    for (const chunk of options.chunks ?? []) {
      if (request.destroyed) return;
      request.write(chunk);
      if (options.pauseMs) await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
    }
    if (options.finish ?? true) request.end();
  })();
  return { response, request };
}
