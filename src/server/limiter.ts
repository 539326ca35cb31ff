/**
 * Bounded concurrency with a bounded FIFO queue. A task runs when a slot is free; otherwise it
 * waits in the queue; when the queue is full it is refused at once (QUEUE_FULL). A waiting task
 * whose signal aborts (client gone, deadline passed) leaves the queue without ever running.
 * A running task keeps its slot until it settles, even if its caller stopped waiting: the slot
 * count always matches the work the CPU is really doing.
 */
import { checkNumber } from '../common/validate';
import { HttpError } from './errors';

export interface LimiterState {
  running: number;
  queued: number;
}

export interface LimiterOptions {
  concurrency: number;
  queueSize: number;
  /** Called after every change of `running` or `queued` (for gauges). */
  onChange?: (state: LimiterState) => void;
  /** The Retry-After value (seconds) sent with QUEUE_FULL; default 1. */
  retryAfterSeconds?: () => number;
}

interface Waiter {
  start: () => void;
}

export class ConcurrencyLimiter {
  private readonly concurrency: number;
  private readonly queueSize: number;
  private readonly onChange: ((state: LimiterState) => void) | undefined;
  private readonly retryAfterSeconds: () => number;
  private readonly waiters: Waiter[] = [];
  private runningCount = 0;
  private idleResolvers: Array<() => void> = [];

  constructor(options: LimiterOptions) {
    const problem =
      checkNumber('concurrency', options.concurrency, { integer: true, min: 1 }) ??
      checkNumber('queueSize', options.queueSize, { integer: true, min: 0 });
    // invariant: config.ts refuses a bad --concurrency or --queue-size (ConfigError) before a limiter is made
    if (problem !== undefined) throw new RangeError(problem);
    this.concurrency = options.concurrency;
    this.queueSize = options.queueSize;
    this.onChange = options.onChange;
    this.retryAfterSeconds = options.retryAfterSeconds ?? (() => 1);
  }

  get state(): LimiterState {
    return { running: this.runningCount, queued: this.waiters.length };
  }

  /**
   * Runs `task` when a slot is free. Rejects with HttpError QUEUE_FULL when no slot and no queue
   * place is free, or with `signal.reason` when the signal aborts while the task is still queued.
   *
   * @example
   * const result = await limiter.run(() => detector.detect(bytes, { signal }), signal);
   */
  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted();
    if (this.runningCount >= this.concurrency) await this.waitForSlot(signal);
    else this.runningCount += 1;
    this.notify();
    try {
      return await task();
    } finally {
      this.release();
    }
  }

  /** Resolves once nothing runs and nothing waits. */
  whenIdle(): Promise<void> {
    if (this.runningCount === 0 && this.waiters.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleResolvers.push(resolve));
  }

  private waitForSlot(signal: AbortSignal | undefined): Promise<void> {
    if (this.waiters.length >= this.queueSize) {
      throw new HttpError('QUEUE_FULL', undefined, { headers: { 'Retry-After': String(this.retryAfterSeconds()) } });
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        this.notify();
        this.checkIdle();
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        // the slot is handed over by release(): runningCount already counts this task
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.notify();
    });
  }

  private release(): void {
    const next = this.waiters.shift();
    if (next !== undefined) next.start();
    else this.runningCount -= 1;
    this.notify();
    this.checkIdle();
  }

  private checkIdle(): void {
    if (this.runningCount === 0 && this.waiters.length === 0) {
      const resolvers = this.idleResolvers;
      this.idleResolvers = [];
      for (const resolve of resolvers) resolve();
    }
  }

  private notify(): void {
    this.onChange?.(this.state);
  }
}
