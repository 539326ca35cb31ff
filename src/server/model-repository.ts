/**
 * A model repository (docs/server.md, "Many models"): every subdirectory of a directory that
 * holds a model.json is a model named after the subdirectory (symbolic links followed, names
 * beginning with '.' ignored). It is a ModelCatalog whose models are added, replaced and removed
 * while the server answers:
 *
 * - a changed model (model.json bytes, a graph file's size or mtime, or the directory's real path)
 *   loads beside the answering version and warms up; only then does it take new requests;
 * - every detection holds a reference on the version it runs on; a replaced or removed version
 *   is closed once its last request finished, so no request fails because of a reload;
 * - a load that fails leaves the working version in place and is reported (state, error, log,
 *   cpwc_model_load_failures_total).
 *
 * Every change (poll, index, load, unload) runs one at a time, in the order asked.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { DetectError } from '../detection/errors';
import { isSpeedOnly } from '../detection/model';
import { HttpError } from './errors';
import type { InferenceService } from './inference';
import type { ServerMetrics } from './metrics';
import { describeModel, type ServedDetector } from './served-model';
import type { ModelCatalog, ModelEndpoint, ModelState, ModelStatus } from './model-catalog';

export interface LoadedDetector extends ServedDetector {
  close(): Promise<void>;
}

export interface ModelRepositoryOptions {
  /** A directory of model directories (--model-repository); exclusive with `single`. */
  root?: string;
  /** One model directory (--model DIR): a repository of one, named after the directory. */
  single?: string;
  /** The model of routes that name none; default: the only model, else the first by name. */
  defaultModel?: string;
  /** Loads and validates one model directory (checksums included). */
  load(dir: string): Promise<LoadedDetector>;
  /** The shared inference pool: detections and warm-ups of every model go through it. */
  inference: InferenceService;
  metrics: ServerMetrics;
  logger: Logger;
}

/** A model directory found in the repository. */
interface Candidate {
  name: string;
  dir: string;
}

/** One loaded version of a model. */
interface Version {
  model: string;
  detector: LoadedDetector;
  realDir: string;
  /** Requests running or queued on this version. */
  refs: number;
  retired: boolean;
  closing: boolean;
  /** Resolves once the detector is closed. */
  closed: Promise<void>;
  markClosed: () => void;
}

interface Entry {
  name: string;
  dir: string;
  state: ModelState;
  error: string | null;
  current: Version | undefined;
  /** Fingerprint of the last load attempt, successful or not (a failed one is retried once changed). */
  fingerprint: string | undefined;
  endpoint: ModelEndpoint;
}

/** One row of Triton's POST /v2/repository/index. */
export interface RepositoryIndexRow {
  name: string;
  version: string;
  state: 'READY' | 'LOADING' | 'UNAVAILABLE';
  reason: string;
}

const STATES: readonly ModelState[] = ['loading', 'ready', 'failed', 'unloaded'];

/** An error as text; the library's coded errors keep their code (`MODEL_INVALID: …`). */
function message(err: unknown): string {
  if (err instanceof DetectError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * What tells two versions of a model directory apart without hashing graphs on every poll: the
 * directory's real path, model.json's bytes (which name every graph's sha256), and each graph
 * file's size and mtime (a graph replaced in place then fails its checksum on load, visibly).
 */
export async function modelFingerprint(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const realDir = await fs.realpath(dir);
  hash.update(realDir).update('\0');
  const manifest = await fs.readFile(path.join(realDir, 'model.json'));
  hash.update(manifest);
  let graphs: unknown;
  try {
    graphs = (JSON.parse(manifest.toString('utf8')) as { graphs?: unknown }).graphs;
  } catch {
    graphs = undefined; // the load reports the bad model.json
  }
  if (typeof graphs === 'object' && graphs !== null) {
    for (const graph of Object.values(graphs as Record<string, unknown>)) {
      const file = typeof graph === 'object' && graph !== null ? (graph as { file?: unknown }).file : undefined;
      if (typeof file !== 'string') continue;
      const stat = await fs.stat(path.join(realDir, file)).catch(() => undefined);
      hash.update(`\0${file}\0${stat?.size ?? -1}\0${stat?.mtimeMs ?? -1}`);
    }
  }
  return hash.digest('hex');
}

/** The model directories of `root`, sorted by name. */
export async function scanRepository(root: string): Promise<Candidate[]> {
  let names: string[];
  try {
    names = await fs.readdir(root);
  } catch (err) {
    throw new HttpError('REPOSITORY_UNREADABLE', `cannot read the model repository '${root}': ${message(err)}`, { cause: err });
  }
  const found: Candidate[] = [];
  for (const name of names.sort()) {
    if (name.startsWith('.')) continue;
    const dir = path.join(root, name);
    // stat follows symbolic links: a link to a model directory is a model
    const stat = await fs.stat(dir).catch(() => undefined);
    if (!stat?.isDirectory()) continue;
    const manifest = await fs.stat(path.join(dir, 'model.json')).catch(() => undefined);
    if (manifest?.isFile()) found.push({ name, dir });
  }
  return found;
}

export class ModelRepository implements ModelCatalog {
  private readonly entries = new Map<string, Entry>();
  /** Models an operator unloaded: polling leaves them unloaded until a load request. */
  private readonly unloadedByOperator = new Set<string>();
  private chain: Promise<unknown> = Promise.resolve();
  private pollTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private defaultModelName: string | undefined;
  private singleName: string | undefined;

  constructor(private readonly options: ModelRepositoryOptions) {
    if ((options.root === undefined) === (options.single === undefined)) {
      // invariant: the caller's code chooses one (serve: --model-repository or --model)
      throw new Error('ModelRepository: give exactly one of root and single');
    }
  }

  get defaultName(): string {
    if (this.defaultModelName === undefined) throw new HttpError('NOT_READY', 'the model repository has not been scanned yet');
    return this.defaultModelName;
  }

  /** Where the models come from, for logs and errors. */
  get location(): string {
    return this.options.root ?? this.options.single ?? '';
  }

  /**
   * Scans the repository, chooses the default model and loads it (warm-up included), then loads
   * the others in the background (`whenSettled()` waits for them). Rejects when the repository
   * holds no model, the default model does not exist, or it fails to load.
   */
  async start(): Promise<void> {
    const found = await this.scan();
    if (found.length === 0)
      throw new HttpError('MODEL_NOT_FOUND', `no model in the repository '${this.location}' (no subdirectory with a model.json)`);
    const requested = this.options.defaultModel;
    const first = requested === undefined ? found[0] : found.find((c) => c.name === requested);
    if (first === undefined) {
      throw new HttpError(
        'MODEL_NOT_FOUND',
        `the default model '${requested}' is not in the repository '${this.location}' (models: ${found.map((c) => c.name).join(', ')})`,
      );
    }
    const defaultName = first.name;
    this.defaultModelName = defaultName;
    await this.enqueue(() => this.apply(first, true));
    const entry = this.entries.get(defaultName);
    if (entry?.current === undefined)
      throw new HttpError('MODEL_LOAD_FAILED', `the default model '${defaultName}' failed to load: ${entry?.error ?? 'unknown error'}`);
    void this.enqueue(() => this.syncWith(found));
  }

  /** Polls every `seconds` (0: never) for added, removed and changed models. */
  startPolling(seconds: number): void {
    if (seconds <= 0 || this.stopped) return;
    const tick = (): void => {
      this.pollTimer = setTimeout(() => {
        this.sync()
          .catch((err: unknown) =>
            this.options.logger.error({ err: message(err), repository: this.location }, 'model repository poll failed'),
          )
          .finally(() => {
            if (!this.stopped) tick();
          });
      }, seconds * 1000);
      this.pollTimer.unref();
    };
    tick();
  }

  /** Resolves once every change asked so far is done. */
  whenSettled(): Promise<void> {
    return this.enqueue(async () => undefined);
  }

  /** One poll now: added models load, removed ones unload, changed ones reload. */
  sync(): Promise<void> {
    return this.enqueue(async () => this.syncWith(await this.scan()));
  }

  /** Triton's repository index after a rescan; `readyOnly` keeps the models that can answer. */
  async index(readyOnly: boolean): Promise<RepositoryIndexRow[]> {
    await this.sync();
    const rows = this.list().map(
      (s): RepositoryIndexRow => ({
        name: s.name,
        version: '1',
        state: s.state === 'ready' ? 'READY' : s.state === 'loading' ? 'LOADING' : 'UNAVAILABLE',
        reason: s.state === 'unloaded' ? 'unloaded' : (s.error ?? ''),
      }),
    );
    return readyOnly ? rows.filter((r) => r.state === 'READY') : rows;
  }

  /**
   * Loads (or reloads, even if unchanged) the model in directory `name` and answers once it takes
   * requests. HttpError MODEL_NOT_FOUND when the repository has no such directory,
   * MODEL_LOAD_FAILED when it does not load (any working version keeps answering).
   */
  load(name: string): Promise<ModelStatus> {
    return this.enqueue(async () => {
      const candidate = (await this.scan()).find((c) => c.name === name);
      if (candidate === undefined) throw new HttpError('MODEL_NOT_FOUND', `no model '${name}' in the repository '${this.location}'`);
      this.unloadedByOperator.delete(name);
      await this.apply(candidate, true);
      const status = this.status(name);
      if (status.error !== null) throw new HttpError('MODEL_LOAD_FAILED', `model '${name}' failed to load: ${status.error}`);
      return status;
    });
  }

  /**
   * Stops serving `name`; its running requests finish first. The default model cannot be
   * unloaded (HttpError MODEL_UNLOAD_REFUSED): routes that name no model need it.
   */
  unload(name: string): Promise<ModelStatus> {
    return this.enqueue(async () => {
      const entry = this.entries.get(name);
      if (entry === undefined)
        throw new HttpError('MODEL_NOT_FOUND', `unknown model '${name}'; models: ${[...this.entries.keys()].join(', ')}`);
      if (name === this.defaultModelName) {
        throw new HttpError(
          'MODEL_UNLOAD_REFUSED',
          `model '${name}' is the default model (routes that name no model use it); it cannot be unloaded`,
        );
      }
      this.unloadedByOperator.add(name);
      if (entry.current !== undefined) void this.retire(entry.current);
      entry.current = undefined;
      entry.error = null;
      this.setState(entry, 'unloaded');
      this.options.logger.info({ model: name }, 'model unloaded');
      return this.status(name);
    });
  }

  names(): string[] {
    return [...this.entries.values()]
      .filter((e) => e.current !== undefined)
      .map((e) => e.name)
      .sort();
  }

  list(): ModelStatus[] {
    return [...this.entries.keys()].sort().map((name) => this.status(name));
  }

  defaultReady(): boolean {
    return this.defaultModelName !== undefined && this.entries.get(this.defaultModelName)?.current !== undefined;
  }

  resolve(name?: string): ModelEndpoint {
    const wanted = name ?? this.defaultName;
    const entry = this.entries.get(wanted) ?? this.aliasEntry(wanted);
    if (entry === undefined) {
      throw new HttpError('MODEL_NOT_FOUND', `unknown model '${wanted}'; models: ${this.names().join(', ') || 'none'}`);
    }
    if (entry.current === undefined) {
      if (entry.state === 'unloaded')
        throw new HttpError(
          'MODEL_NOT_FOUND',
          `model '${entry.name}' is unloaded (POST /v2/repository/models/${entry.name}/load loads it)`,
        );
      const why = entry.state === 'loading' ? 'is loading' : `failed to load: ${entry.error ?? 'unknown error'}`;
      throw new HttpError('MODEL_NOT_READY', `model '${entry.name}' ${why}`, { headers: { 'Retry-After': '1' } });
    }
    return entry.endpoint;
  }

  /** Stops polling, waits for pending changes, and closes every version once its requests finished. */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.pollTimer !== undefined) clearTimeout(this.pollTimer);
    await this.chain.catch(() => undefined);
    const closing: Array<Promise<void>> = [];
    for (const entry of this.entries.values()) {
      if (entry.current !== undefined) closing.push(this.retire(entry.current));
      entry.current = undefined;
    }
    await Promise.all(closing);
  }

  // ---- internals ----------------------------------------------------------------------------

  /** With --model DIR, the directory's name is accepted too. */
  private aliasEntry(name: string): Entry | undefined {
    if (this.options.single === undefined || name !== path.basename(path.resolve(this.options.single))) return undefined;
    return [...this.entries.values()][0];
  }

  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const result = this.chain.then(work, work);
    this.chain = result.catch(() => undefined);
    return result;
  }

  private async scan(): Promise<Candidate[]> {
    if (this.options.single !== undefined) {
      // --model DIR: known by model.json's name as before (the directory name is an alias)
      const dir = path.resolve(this.options.single);
      const manifest = await fs.readFile(path.join(dir, 'model.json'), 'utf8').catch(() => undefined);
      let name: unknown;
      try {
        name = manifest === undefined ? undefined : (JSON.parse(manifest) as { name?: unknown }).name;
      } catch {
        name = undefined; // the load reports the bad model.json
      }
      // the name is chosen once: a reload that renames the model keeps serving it under the first
      this.singleName ??= typeof name === 'string' && name !== '' ? name : path.basename(dir);
      return [{ name: this.singleName, dir }];
    }
    return scanRepository(this.options.root as string);
  }

  private async syncWith(found: readonly Candidate[]): Promise<void> {
    if (this.stopped) return;
    const present = new Set(found.map((c) => c.name));
    for (const entry of [...this.entries.values()]) {
      if (!present.has(entry.name)) this.remove(entry);
    }
    for (const name of this.unloadedByOperator) if (!present.has(name)) this.unloadedByOperator.delete(name);
    // every new model is listed as loading at once; they load one after the other
    for (const candidate of found) {
      if (!this.entries.has(candidate.name) && !this.unloadedByOperator.has(candidate.name)) {
        const entry = this.newEntry(candidate);
        this.entries.set(candidate.name, entry);
        this.setState(entry, 'loading');
      }
    }
    for (const candidate of found) {
      if (this.stopped) return;
      if (!this.unloadedByOperator.has(candidate.name)) await this.apply(candidate, false);
    }
  }

  /** Loads `candidate` when it is new, changed, or `force`; a failure keeps the working version. */
  private async apply(candidate: Candidate, force: boolean): Promise<void> {
    const { logger, metrics } = this.options;
    let entry = this.entries.get(candidate.name);
    if (entry === undefined) {
      entry = this.newEntry(candidate);
      this.entries.set(candidate.name, entry);
      this.setState(entry, 'loading');
    }
    entry.dir = candidate.dir;
    let fingerprint: string;
    try {
      fingerprint = await modelFingerprint(candidate.dir);
    } catch (err) {
      // vanished or unreadable between the scan and now: the next poll sees what remains
      if (entry.current === undefined) this.fail(entry, `cannot read ${candidate.dir}: ${message(err)}`, undefined);
      return;
    }
    if (!force && fingerprint === entry.fingerprint) return;
    if (entry.current === undefined) this.setState(entry, 'loading');
    const started = performance.now();
    let detector: LoadedDetector | undefined;
    try {
      detector = await this.options.load(candidate.dir);
      await this.options.inference.warmUp(detector);
    } catch (err) {
      await detector?.close().catch(() => undefined);
      this.fail(entry, message(err), fingerprint);
      metrics.modelLoadFailures.inc({ model: entry.name });
      logger.error(
        { model: entry.name, dir: candidate.dir, err: message(err), keptVersion: entry.current !== undefined },
        'model failed to load',
      );
      return;
    }
    if (this.stopped || !this.entries.has(entry.name)) {
      await detector.close();
      return;
    }
    const previous = entry.current;
    entry.current = this.newVersion(entry.name, detector, await fs.realpath(candidate.dir).catch(() => candidate.dir));
    entry.fingerprint = fingerprint;
    entry.error = null;
    this.setState(entry, 'ready');
    logger.info(
      {
        model: entry.name,
        dir: candidate.dir,
        realDir: entry.current.realDir,
        loadMs: Math.round(performance.now() - started),
        replaced: previous !== undefined,
      },
      previous === undefined ? 'model loaded' : 'model reloaded',
    );
    if (isSpeedOnly(detector.model)) {
      logger.warn(
        { model: entry.name, dir: candidate.dir },
        'this model is a speed-only int8 twin (model.json calibration.speed_only): its detections were never checked; benchmarks only',
      );
    }
    if (previous !== undefined) void this.retire(previous);
  }

  private fail(entry: Entry, error: string, fingerprint: string | undefined): void {
    entry.error = error;
    entry.fingerprint = fingerprint;
    if (entry.current === undefined) this.setState(entry, 'failed');
  }

  private remove(entry: Entry): void {
    this.entries.delete(entry.name);
    if (entry.current !== undefined) void this.retire(entry.current);
    entry.current = undefined;
    for (const state of STATES) this.options.metrics.modelState.remove({ model: entry.name, state });
    this.options.logger.info(
      { model: entry.name },
      entry.name === this.defaultModelName ? 'default model removed from the repository: not ready until it returns' : 'model removed',
    );
  }

  /** Marks a version replaced; it closes once its last request is done. */
  private retire(version: Version): Promise<void> {
    version.retired = true;
    if (version.refs === 0) this.closeVersion(version);
    return version.closed;
  }

  private release(version: Version): void {
    version.refs -= 1;
    if (version.retired && version.refs === 0) this.closeVersion(version);
  }

  private closeVersion(version: Version): void {
    if (version.closing) return;
    version.closing = true;
    version.detector.close().then(
      () => {
        if (!this.stopped) this.options.logger.info({ model: version.model, realDir: version.realDir }, 'previous model version closed');
        version.markClosed();
      },
      (err: unknown) => {
        this.options.logger.warn({ err: message(err), realDir: version.realDir }, 'closing a replaced model version failed');
        version.markClosed();
      },
    );
  }

  private newVersion(model: string, detector: LoadedDetector, realDir: string): Version {
    let markClosed: () => void = () => undefined;
    const closed = new Promise<void>((resolve) => {
      markClosed = resolve;
    });
    return { model, detector, realDir, refs: 0, retired: false, closing: false, closed, markClosed };
  }

  private newEntry(candidate: Candidate): Entry {
    const name = candidate.name;
    const entry: Entry = {
      name,
      dir: candidate.dir,
      state: 'loading',
      error: null,
      current: undefined,
      fingerprint: undefined,
      endpoint: {
        name,
        get model() {
          const current = entry.current;
          if (current === undefined) throw new HttpError('MODEL_NOT_FOUND', `model '${name}' is not loaded`);
          return current.detector.model;
        },
        detect: async (image, detectOptions, signal) => {
          // the newest version when the detection starts; a version retired meanwhile stays open for it
          const version = entry.current;
          if (version === undefined) throw new HttpError('MODEL_NOT_FOUND', `model '${name}' was unloaded or removed`);
          version.refs += 1;
          try {
            return await this.options.inference.detect(version.detector, image, detectOptions, signal, name);
          } finally {
            this.release(version);
          }
        },
      },
    };
    return entry;
  }

  private setState(entry: Entry, state: ModelState): void {
    entry.state = state;
    for (const s of STATES) this.options.metrics.modelState.set({ model: entry.name, state: s }, s === state ? 1 : 0);
  }

  private status(name: string): ModelStatus {
    const entry = this.entries.get(name);
    if (entry === undefined) throw new HttpError('MODEL_NOT_FOUND', `unknown model '${name}'`);
    return {
      name,
      state: entry.state,
      error: entry.error,
      default: name === this.defaultModelName,
      metadata: entry.current === undefined ? null : describeModel(entry.current.detector.model),
    };
  }
}
