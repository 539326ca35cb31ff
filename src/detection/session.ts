/**
 * The two ONNX Runtime sessions of a model, hosted in one worker thread.
 *
 * onnxruntime-node runs a graph synchronously on the calling thread; on the main thread that would
 * freeze the event loop (HTTP, health checks, abort signals) for the length of every inference.
 * The worker owns both sessions, created once; graph A's feature maps stay in the worker until the
 * same request's graph B consumes them, so only the small RPN outputs and RoIs cross threads.
 * Calls are served one at a time in arrival order (ORT already uses every core for one graph).
 * The worker's program is src/detection/session-worker.ts; the messages are typed in session-messages.ts.
 */
import * as os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { InferenceSession } from 'onnxruntime-node';
import { DetectError } from './errors';
import type {
  GraphSignature,
  TensorData,
  WorkerCall,
  WorkerReply,
  WorkerRequest,
  WorkerSuccess,
  SessionWorkerData,
} from './session-messages';
import { sessionWorkerPath } from './session-worker-path';
import {
  DEFAULT_EXECUTION_PROVIDER,
  executionProviderUnavailable,
  parseExecutionProvider,
  type ExecutionProvider,
} from './execution-provider';

export type { GraphSignature, TensorData } from './session-messages';

/**
 * ONNX Runtime session options used for both graphs. The defaults were chosen by measurement
 * (tools/bench/bench-pipeline.mjs and the full-size cpwc_r50_fpn on a 2-core machine, 1216x800 input):
 * graph A took 2.15 s with the CPU arena against 2.85 s without it (the arena saves re-faulting
 * hundreds of MB of activations every run), 3.9 s with graphOptimizationLevel 'extended' instead of
 * 'all', and 5.5 s with one thread instead of two; memory-pattern planning gained nothing measurable;
 * spinning intra-op threads only cost time when other processes share the cores. Memory, 736x480-class
 * inputs from images of 24 sizes: over 80 images RSS grew alike with and without the arena (about
 * 790 -> 885 MiB with it, 775 -> 905 MiB and a 1017 MiB peak without), arena shrinkage after each run
 * did not lower it, and with these defaults RSS stayed between 806 and 903 MiB over 200 images
 * (806 after 10, 829 after 100, 875 after 200).
 */
export interface SessionOptions {
  /** Threads for one operator (default: all cores, at most 4). */
  intraOpThreads?: number;
  /** Where ONNX Runtime runs both graphs (default 'cpu'; see src/detection/execution-provider.ts). */
  executionProvider?: ExecutionProvider;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  executionMode?: 'sequential' | 'parallel';
  /** ORT's CPU arena allocator (default on: faster, and no more memory over varying input sizes, see above). */
  enableCpuMemArena?: boolean;
  /** Memory-pattern planning (default off: no measurable gain, and it plans per input shape). */
  enableMemPattern?: boolean;
  /** Let idle intra-op threads spin (ORT `session.intra_op.allow_spinning`; default off: spinning burns cores other work could use). */
  intraOpSpinning?: boolean;
  /**
   * With the arena on: give its unused memory back after every run (ORT run option
   * `memory.enable_memory_arena_shrinkage`; default off).
   */
  arenaShrinkage?: boolean;
}

export const DEFAULT_SESSION_OPTIONS: Required<Omit<SessionOptions, 'intraOpThreads'>> = {
  executionProvider: DEFAULT_EXECUTION_PROVIDER,
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
  enableCpuMemArena: true,
  enableMemPattern: false,
  intraOpSpinning: false,
  arenaShrinkage: false,
};

/** One graph run's outputs and how long the worker spent computing them. */
export interface GraphRun {
  outputs: Record<string, TensorData>;
  /** Time inside session.run. */
  runMs: number;
  /** Time the call waited in the worker behind other calls. */
  queuedMs: number;
}

/** A worker failure that the execution provider caused (the same graph loads on the CPU). */
class ProviderError extends Error {}

/** Owns the worker; every method resolves when the worker has answered. */
export class GraphSessions {
  private nextCall = 1;
  private readonly pending = new Map<number, { resolve: (reply: WorkerSuccess) => void; reject: (error: Error) => void }>();
  private failure: Error | null = null;

  private constructor(
    private readonly worker: Worker,
    readonly graphs: Record<'backbone_rpn' | 'box_head', GraphSignature>,
  ) {}

  /**
   * Starts the worker and creates both sessions in it.
   *
   * @example
   * const sessions = await GraphSessions.create('m/backbone_rpn.onnx', 'm/box_head.onnx', { intraOpThreads: 2 });
   */
  static async create(backboneRpnPath: string, boxHeadPath: string, options: SessionOptions = {}): Promise<GraphSessions> {
    const provider = parseExecutionProvider(options.executionProvider ?? DEFAULT_EXECUTION_PROVIDER);
    const workerData: SessionWorkerData = { ortPath: require.resolve('onnxruntime-node') };
    const worker = new Worker(sessionWorkerPath(), { workerData });
    const host = new GraphSessions(worker, {
      backbone_rpn: { inputNames: [], outputNames: [] },
      box_head: { inputNames: [], outputNames: [] },
    });
    worker.on('message', (reply: WorkerReply) => host.settle(reply));
    worker.on('error', (error) => host.fail(new Error(`the ONNX Runtime worker failed: ${error.message}`)));
    worker.on('exit', (code) => host.fail(new Error(`the ONNX Runtime worker exited (code ${code})`)));
    try {
      const loaded = await host.call({
        type: 'load',
        backboneRpnPath,
        boxHeadPath,
        options: ortSessionOptions(options),
        runOptions: ortRunOptions(options),
      });
      Object.assign(host.graphs, loaded.graphs);
    } catch (cause) {
      await worker.terminate();
      if (cause instanceof ProviderError) throw executionProviderUnavailable(provider, cause);
      throw new DetectError('MODEL_INVALID', `ONNX Runtime cannot load the model graphs: ${(cause as Error).message}`, { cause });
    }
    return host;
  }

  /** Runs graph A; returns the `fetch` outputs, keeps the others for `runBoxHead(request, …)`. */
  async runBackboneRpn(request: number, image: TensorData, fetch: string[]): Promise<GraphRun> {
    const reply = await this.call({ type: 'backbone', request, image, fetch }, [image.data.buffer as ArrayBuffer]);
    return { outputs: reply.outputs ?? {}, runMs: reply.runMs ?? 0, queuedMs: reply.queuedMs ?? 0 };
  }

  /** Runs graph B on the request's kept feature maps and these RoIs, then drops the feature maps. */
  async runBoxHead(request: number, rois: Record<string, TensorData>): Promise<GraphRun> {
    const reply = await this.call({ type: 'boxHead', request, rois });
    return { outputs: reply.outputs ?? {}, runMs: reply.runMs ?? 0, queuedMs: reply.queuedMs ?? 0 };
  }

  /** Drops a request's kept feature maps (a request that stops between the graphs). */
  async release(request: number): Promise<void> {
    await this.call({ type: 'release', request });
  }

  /** Releases both sessions and stops the worker. */
  async close(): Promise<void> {
    if (this.failure === null) {
      try {
        await this.call({ type: 'close' });
      } finally {
        this.failure = new Error('the sessions are closed');
        await this.worker.terminate();
      }
    }
  }

  private call(message: WorkerCall, transfer: ArrayBuffer[] = []): Promise<WorkerSuccess> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const call = this.nextCall++;
    return new Promise((resolve, reject) => {
      this.pending.set(call, { resolve, reject });
      this.worker.postMessage({ ...message, call, sentAt: Date.now() } satisfies WorkerRequest, transfer);
    });
  }

  private settle(reply: WorkerReply): void {
    const waiter = this.pending.get(reply.call);
    if (waiter === undefined) return;
    this.pending.delete(reply.call);
    if (reply.ok) waiter.resolve(reply);
    else waiter.reject(reply.providerFailed === true ? new ProviderError(reply.message) : new Error(reply.message));
  }

  private fail(error: Error): void {
    if (this.failure === null) this.failure = error;
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }
}

/** Cores available to this process, for the default thread count. */
export function defaultIntraOpThreads(): number {
  return Math.max(1, Math.min(4, os.availableParallelism()));
}

function ortSessionOptions(options: SessionOptions): InferenceSession.SessionOptions {
  return {
    executionProviders: [options.executionProvider ?? DEFAULT_EXECUTION_PROVIDER],
    intraOpNumThreads: options.intraOpThreads ?? defaultIntraOpThreads(),
    interOpNumThreads: 1,
    graphOptimizationLevel: options.graphOptimizationLevel ?? DEFAULT_SESSION_OPTIONS.graphOptimizationLevel,
    executionMode: options.executionMode ?? DEFAULT_SESSION_OPTIONS.executionMode,
    enableCpuMemArena: options.enableCpuMemArena ?? DEFAULT_SESSION_OPTIONS.enableCpuMemArena,
    enableMemPattern: options.enableMemPattern ?? DEFAULT_SESSION_OPTIONS.enableMemPattern,
    logSeverityLevel: 3,
    extra: { session: { intra_op: { allow_spinning: (options.intraOpSpinning ?? DEFAULT_SESSION_OPTIONS.intraOpSpinning) ? '1' : '0' } } },
  };
}

function ortRunOptions(options: SessionOptions): InferenceSession.RunOptions {
  const shrink =
    (options.enableCpuMemArena ?? DEFAULT_SESSION_OPTIONS.enableCpuMemArena) &&
    (options.arenaShrinkage ?? DEFAULT_SESSION_OPTIONS.arenaShrinkage);
  return shrink ? { extra: { memory: { enable_memory_arena_shrinkage: 'cpu:0' } } } : {};
}
