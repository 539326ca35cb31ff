/**
 * Detection through running cpwc-detect servers (`eval --server URL[,URL…]`): POST /v1/detect
 * with the raw image, at most `concurrencyPerServer` requests in flight to each server, a
 * per-request timeout, 503 + Retry-After honoured (that server gets nothing until then),
 * transient failures (network errors, timeouts, 500/502/504) retried on any server, the failing
 * server left alone for an exponentially growing time (a dead server is tried less and less
 * often; a healthy one is always preferred). Every server must serve the same model (GET /v1/models: name, graph
 * checksums, input sizes, defaults), and every answer must name it.
 */
import type { Detection } from '../../detection/types';
import { CocoEvalError } from '../errors';
import { checkNumber, type NumberRule } from '../../common/validate';
import { PLACEHOLDER_CLASS } from '../../detection/classes';
import type { DetectionSource, SourceResult } from './detection-source';
import { describeIdentity, identityOfDescription, type ModelIdentity } from './model-identity';
import type { ProgressStream } from './progress';

export interface ServerPoolOptions {
  urls: string[];
  /** Requests in flight to one server at a time (default 2). */
  concurrencyPerServer?: number;
  /** Per-request timeout in ms (default 120000). */
  timeoutMs?: number;
  /** Tries of one image after network errors, timeouts and 5xx other than 503 (default 8: about 24 s of backoff on one server). */
  maxAttempts?: number;
  /** Longest wait for a busy (503) pool before giving up on an image, ms (default 600000). */
  maxBusyMs?: number;
  /** Sent as `Authorization: Bearer KEY` (default: the CPWC_API_KEY environment variable). */
  apiKey?: string;
  log?: ProgressStream;
}

/** Server error codes that mean "this image cannot be detected" (skipped, like a local run's). */
const SKIPPABLE_CODES = new Set([
  'IMAGE_EMPTY',
  'IMAGE_MISSING',
  'IMAGE_UNSUPPORTED_FORMAT',
  'IMAGE_DECODE_FAILED',
  'IMAGE_TOO_LARGE',
  'BODY_TOO_LARGE',
]);
const TRANSIENT_STATUSES = new Set([500, 502, 504]);
/** GET /v1/models at the start: a server that does not answer it this fast is not there. */
const CONNECT_TIMEOUT_MS = 30_000;
const BACKOFF_BASE_MS = 250;
const RESUME_HINT = '; the images done so far are recorded: rerun the same command to resume once the servers answer';
const BACKOFF_MAX_MS = 8_000;
const RETRY_AFTER_MAX_S = 30;
/** A "Retry-After: 0" still waits this long, so a busy pool is not polled in a tight loop. */
const RETRY_AFTER_MIN_S = 0.1;

interface ServerState {
  url: string;
  inFlight: number;
  /** Date.now() before which this server gets no request (after a 503 or a failure). */
  pausedUntil: number;
  requests: number;
  ok: number;
  busy: number;
  failures: number;
  /** Transient failures since its last good answer: sets how long it is left alone. */
  consecutiveFailures: number;
}

interface ErrorBody {
  error?: { code?: unknown; message?: unknown };
}

export function normalizeServerUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new CocoEvalError('INVALID_ARGUMENT', `--server: '${raw}' is not a URL (want http://HOST:PORT)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new CocoEvalError('INVALID_ARGUMENT', `--server: '${raw}' is not an http(s) URL`);
  return url.href.replace(/\/+$/, '');
}

function retryAfterMs(header: string | null): number {
  const seconds = Number(header);
  return (
    (header !== null && Number.isFinite(seconds) && seconds >= 0 ? Math.min(Math.max(seconds, RETRY_AFTER_MIN_S), RETRY_AFTER_MAX_S) : 1) *
    1000
  );
}

async function errorOf(response: Response): Promise<{ code: string; message: string }> {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text) as ErrorBody;
    return { code: String(body.error?.code ?? `HTTP_${response.status}`), message: String(body.error?.message ?? text.slice(0, 200)) };
  } catch {
    return { code: `HTTP_${response.status}`, message: text.slice(0, 200) };
  }
}

/** Class list indexed by class_id from /v1/models' [{class_id, label}] (gaps are "N/A", 0 is background). */
function classList(description: unknown, source: string): string[] {
  const entries = (description as { classes?: unknown }).classes;
  if (!Array.isArray(entries) || entries.length === 0)
    throw new CocoEvalError('FIELD_INVALID', `${source}: models[0].classes is not a list of classes`, { file: source, field: 'classes' });
  const classes = ['__background__'];
  for (const entry of entries as Array<{ class_id?: unknown; label?: unknown }>) {
    if (!Number.isInteger(entry.class_id) || (entry.class_id as number) < 1 || typeof entry.label !== 'string') {
      throw new CocoEvalError('FIELD_INVALID', `${source}: models[0].classes has an entry without an integer class_id >= 1 and a label`, {
        file: source,
        field: 'classes',
      });
    }
    const id = entry.class_id as number;
    while (classes.length <= id) classes.push(PLACEHOLDER_CLASS);
    classes[id] = entry.label;
  }
  return classes;
}

/** The numeric options, checked before any server is asked (INVALID_ARGUMENT naming the option). */
function checkPoolOptions(options: ServerPoolOptions): void {
  const rules: Array<[keyof ServerPoolOptions, NumberRule]> = [
    ['concurrencyPerServer', { integer: true, min: 1 }],
    ['timeoutMs', { greaterThan: 0 }],
    ['maxAttempts', { integer: true, min: 1 }],
    ['maxBusyMs', { min: 0 }],
  ];
  for (const [name, rule] of rules) {
    const problem = options[name] === undefined ? undefined : checkNumber(name, options[name], rule);
    if (problem !== undefined) throw new CocoEvalError('INVALID_ARGUMENT', problem, { field: name });
  }
}

export class ServerPool implements DetectionSource {
  readonly modelDir = null;
  readonly modelJsonSha256 = null;
  readonly description: string;
  readonly concurrency: number;
  private readonly servers: ServerState[];
  private readonly perServer: number;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly maxBusyMs: number;
  private readonly headers: Record<string, string>;
  private readonly log: ProgressStream;
  private waiters: Array<() => void> = [];
  private retries = 0;

  private constructor(
    readonly identity: ModelIdentity,
    readonly classes: readonly string[],
    urls: string[],
    options: ServerPoolOptions,
  ) {
    this.perServer = options.concurrencyPerServer ?? 2;
    this.timeoutMs = options.timeoutMs ?? 120_000;
    this.maxAttempts = options.maxAttempts ?? 8;
    this.maxBusyMs = options.maxBusyMs ?? 600_000;
    this.log = options.log ?? process.stderr;
    const key = options.apiKey ?? process.env.CPWC_API_KEY;
    this.headers = key === undefined || key === '' ? {} : { Authorization: `Bearer ${key}` };
    this.servers = urls.map((url) => ({
      url,
      inFlight: 0,
      pausedUntil: 0,
      requests: 0,
      ok: 0,
      busy: 0,
      failures: 0,
      consecutiveFailures: 0,
    }));
    this.description = urls.join(',');
    this.concurrency = urls.length * this.perServer;
  }

  /** Asks every server which model it serves; refuses servers that disagree. */
  static async connect(options: ServerPoolOptions): Promise<ServerPool> {
    checkPoolOptions(options);
    const urls = [...new Set(options.urls.map(normalizeServerUrl))];
    if (urls.length === 0) throw new CocoEvalError('INVALID_ARGUMENT', '--server needs at least one URL');
    const key = options.apiKey ?? process.env.CPWC_API_KEY;
    const headers: Record<string, string> = key === undefined || key === '' ? {} : { Authorization: `Bearer ${key}` };
    let first: { identity: ModelIdentity; classes: string[]; url: string } | undefined;
    for (const url of urls) {
      const source = `${url}/v1/models`;
      let response: Response;
      try {
        response = await fetch(source, { headers, signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS) });
      } catch (cause) {
        const why = (cause as Error).name === 'TimeoutError' ? `within ${CONNECT_TIMEOUT_MS / 1000} s` : `(${(cause as Error).message})`;
        throw new CocoEvalError(
          'SERVER_FAILED',
          `${source}: no answer ${why}; is a cpwc-detect server running there?`,
          { file: source },
          { cause },
        );
      }
      if (response.status !== 200) {
        const error = await errorOf(response);
        throw new CocoEvalError('SERVER_FAILED', `${source}: HTTP ${response.status} ${error.code}: ${error.message}`, { file: source });
      }
      const body = (await response.json().catch(() => undefined)) as { models?: unknown[] } | undefined;
      const description = Array.isArray(body?.models) ? body.models[0] : undefined;
      const identity = identityOfDescription(description, source);
      const classes = classList(description, source);
      if (first === undefined) first = { identity, classes, url };
      else if (JSON.stringify(first.identity) !== JSON.stringify(identity) || JSON.stringify(first.classes) !== JSON.stringify(classes)) {
        throw new CocoEvalError(
          'MODEL_MISMATCH',
          `${url} serves ${describeIdentity(identity)}, ${first.url} serves ${describeIdentity(first.identity)}: ` +
            'every --server must serve the same model',
          { file: source },
        );
      }
    }
    return new ServerPool(first!.identity, first!.classes, urls, options);
  }

  stats(): Record<string, unknown> {
    return {
      servers: this.servers.map((s) => ({ url: s.url, requests: s.requests, ok: s.ok, busy_503: s.busy, failures: s.failures })),
      retries: this.retries,
    };
  }

  async close(): Promise<void> {
    // fetch keeps no state of ours; nothing to release
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** A server with a free place that is not paused, waiting for one if needed. */
  private async acquire(): Promise<ServerState> {
    for (;;) {
      const now = Date.now();
      const free = this.servers
        .filter((s) => s.inFlight < this.perServer && s.pausedUntil <= now)
        .sort((a, b) => a.consecutiveFailures - b.consecutiveFailures || a.inFlight - b.inFlight)[0];
      if (free !== undefined) {
        free.inFlight++;
        return free;
      }
      const paused = this.servers.filter((s) => s.pausedUntil > now).map((s) => s.pausedUntil);
      await new Promise<void>((resolve) => {
        const timer = paused.length > 0 ? setTimeout(resolve, Math.min(...paused) - now) : undefined;
        this.waiters.push(() => {
          if (timer !== undefined) clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private release(server: ServerState): void {
    server.inFlight--;
    this.wake();
  }

  async detect(image: Buffer, scoreThreshold: number | undefined): Promise<SourceResult> {
    const defaults = this.identity.defaults;
    const query = `score_threshold=${scoreThreshold ?? defaults.score_threshold}&max_detections=${defaults.max_detections}`;
    let failures = 0;
    const startedAt = Date.now();
    for (;;) {
      const server = await this.acquire();
      const target = `${server.url}/v1/detect`;
      server.requests++;
      let outcome:
        | { kind: 'done'; result: SourceResult }
        | { kind: 'busy'; waitMs: number; why: string }
        | { kind: 'transient'; why: string };
      try {
        outcome = await this.attempt(server, `${target}?${query}`, image);
      } finally {
        this.release(server);
      }
      if (outcome.kind === 'done') {
        server.ok++;
        server.consecutiveFailures = 0;
        return outcome.result;
      }
      this.retries++;
      if (outcome.kind === 'busy') {
        server.busy++;
        server.pausedUntil = Math.max(server.pausedUntil, Date.now() + outcome.waitMs);
        if (Date.now() - startedAt > this.maxBusyMs) {
          throw new CocoEvalError(
            'SERVER_FAILED',
            `${target}: still busy after ${Math.round(this.maxBusyMs / 1000)} s of retries (${outcome.why})${RESUME_HINT}`,
            { file: target },
          );
        }
        this.note(`eval: ${target} answered ${outcome.why}; it gets no request for ${(outcome.waitMs / 1000).toFixed(1)} s`);
        continue;
      }
      server.failures++;
      server.consecutiveFailures++;
      failures++;
      if (failures >= this.maxAttempts) {
        throw new CocoEvalError(
          'SERVER_FAILED',
          `${target}: ${outcome.why} (the image failed ${failures} times, giving up)${RESUME_HINT}`,
          {
            file: target,
          },
        );
      }
      const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (server.consecutiveFailures - 1));
      server.pausedUntil = Math.max(server.pausedUntil, Date.now() + backoff);
      this.note(
        `eval: ${target}: ${outcome.why}; retrying the image (try ${failures + 1} of ${this.maxAttempts}), ` +
          `this server rests ${(backoff / 1000).toFixed(2)} s`,
      );
    }
  }

  private note(line: string): void {
    this.log.write(`${this.log.isTTY === true ? '\r\x1b[K' : ''}${line}\n`);
  }

  private async attempt(
    server: ServerState,
    url: string,
    image: Buffer,
  ): Promise<{ kind: 'done'; result: SourceResult } | { kind: 'busy'; waitMs: number; why: string } | { kind: 'transient'; why: string }> {
    let response: Response;
    let body: unknown;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/octet-stream', ...this.headers },
        body: image,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      if (response.status !== 200) {
        const error = await errorOf(response);
        if (response.status === 503)
          return { kind: 'busy', waitMs: retryAfterMs(response.headers.get('retry-after')), why: `503 ${error.code}` };
        if (TRANSIENT_STATUSES.has(response.status))
          return { kind: 'transient', why: `HTTP ${response.status} ${error.code}: ${error.message}` };
        if (SKIPPABLE_CODES.has(error.code)) return { kind: 'done', result: { ok: false, reason: `${error.code}: ${error.message}` } };
        throw new CocoEvalError('SERVER_FAILED', `${server.url}/v1/detect: HTTP ${response.status} ${error.code}: ${error.message}`, {
          file: server.url,
        });
      }
      body = await response.json();
    } catch (err) {
      if (err instanceof CocoEvalError) throw err;
      const cause = err as Error;
      const why =
        cause.name === 'TimeoutError'
          ? `no answer within ${this.timeoutMs} ms`
          : `${cause.message}${cause.cause instanceof Error ? ` (${cause.cause.message})` : ''}`;
      return { kind: 'transient', why };
    }
    const answer = body as { model?: unknown; detections?: unknown };
    if (answer.model !== this.identity.name) {
      throw new CocoEvalError(
        'MODEL_MISMATCH',
        `${server.url} answered for model ${JSON.stringify(answer.model)}, this run is for ${describeIdentity(this.identity)}: ` +
          "every --server must serve the run's model",
        { file: server.url },
      );
    }
    if (!Array.isArray(answer.detections))
      throw new CocoEvalError('SERVER_FAILED', `${server.url}/v1/detect: the answer has no detections list`, { file: server.url });
    return { kind: 'done', result: { ok: true, detections: answer.detections as Detection[] } };
  }
}
