/**
 * The one path from an HTTP handler to the detector: a bounded slot (limiter), the request's
 * abort signal (client gone or deadline passed) and the metrics around every inference.
 */
import sharp from 'sharp';
import type { DetectOptions, DetectionResult } from '../detection/types';
import { DetectError } from '../detection/errors';
import { HttpError } from './errors';
import { ConcurrencyLimiter } from './limiter';
import type { ServerMetrics } from './metrics';
import type { ServedDetector } from './served-model';

export interface InferenceOutcome {
  result: DetectionResult;
  /** Milliseconds spent waiting for a slot. */
  queueMs: number;
}

/** A promise that rejects with the signal's reason once it aborts (never resolves). */
function rejectOnAbort(signal: AbortSignal): { promise: Promise<never>; dispose: () => void } {
  let onAbort: () => void = () => undefined;
  const promise = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  return { promise, dispose: () => signal.removeEventListener('abort', onAbort) };
}

/** The admission pools (the `pool` label of cpwc_admitted_requests). */
type AdmissionPool = 'authenticated' | 'key_in_body';

export class InferenceService {
  readonly limiter: ConcurrencyLimiter;
  /**
   * Places taken, by admission pool: `authenticated`, requests between admission and response (uploading,
   * queued or running); `key_in_body`, uploads whose API key is inside the body, not yet checked.
   */
  private readonly inPool: Record<AdmissionPool, number> = { authenticated: 0, key_in_body: 0 };
  private readonly capacity: number;

  /** One pool for the whole server: every model's inferences share its slots and queue. */
  constructor(
    private readonly metrics: ServerMetrics,
    private readonly limits: { concurrency: number; queueSize: number },
  ) {
    this.capacity = limits.concurrency + limits.queueSize;
    this.limiter = new ConcurrencyLimiter({
      concurrency: limits.concurrency,
      queueSize: limits.queueSize,
      onChange: ({ running, queued }) => {
        metrics.inferencesInFlight.set(running);
        metrics.queueDepth.set(queued);
      },
      retryAfterSeconds: () => this.retryAfterSeconds(limits.concurrency),
    });
  }

  private recentTotalMs = 0;

  get admitted(): number {
    return this.inPool.authenticated;
  }

  /**
   * Admits a detection request before its body is read, or refuses it with QUEUE_FULL when
   * `concurrency + queueSize` requests are already admitted. This bounds the memory held by
   * uploads in progress as well as by the queue. Call the returned function once, when the
   * request is over.
   */
  admit(): () => void {
    return this.enter('authenticated', undefined);
  }

  get unverifiedUploads(): number {
    return this.inPool.key_in_body;
  }

  /**
   * Admits an upload whose API key is in the body (DeepStack's `api_key` form field) into a pool
   * of its own, `concurrency + queueSize` places, so uploads that have not proved a key cannot
   * take the places of authenticated requests. Refuses with QUEUE_FULL when that pool is full.
   * Once the key is checked, the request gives this place back and is admitted with `admit()`.
   */
  admitUnverified(): () => void {
    return this.enter(
      'key_in_body',
      'the server is busy: every place for uploads with the API key in the body is taken; retry later, or send Authorization: Bearer',
    );
  }

  /**
   * Takes a place in `pool`, or refuses with QUEUE_FULL (and `message`, else the code's own) when its
   * `concurrency + queueSize` places are taken. The returned function gives the place back, once.
   */
  private enter(pool: AdmissionPool, message: string | undefined): () => void {
    if (this.inPool[pool] >= this.capacity) {
      throw new HttpError('QUEUE_FULL', message, { headers: { 'Retry-After': String(this.retryAfterSeconds(this.limits.concurrency)) } });
    }
    this.inPool[pool] += 1;
    this.metrics.admittedRequests.set({ pool }, this.inPool[pool]);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inPool[pool] -= 1;
      this.metrics.admittedRequests.set({ pool }, this.inPool[pool]);
    };
  }

  /** Seconds until a queue place is likely free: one average inference per slot, at least 1. */
  private retryAfterSeconds(concurrency: number): number {
    const perInference = this.recentTotalMs > 0 ? this.recentTotalMs / 1000 : 1;
    return Math.max(1, Math.ceil(perInference / concurrency));
  }

  /**
   * Runs one detection in a slot. Resolves with the result, or rejects with: QUEUE_FULL at once
   * when the queue is full; the signal's reason (an HttpError) as soon as the signal aborts, even
   * while the inference runs (that inference still finishes and frees its slot); a DetectError
   * for bad input.
   */
  async detect(
    detector: ServedDetector,
    image: Uint8Array,
    options: Omit<DetectOptions, 'signal'>,
    signal: AbortSignal,
    modelName: string = detector.model.name,
  ): Promise<InferenceOutcome> {
    const queuedAt = performance.now();
    let queueMs = 0;
    const work = this.limiter.run(async () => {
      queueMs = performance.now() - queuedAt;
      this.metrics.queueWait.observe(queueMs / 1000);
      signal.throwIfAborted();
      return detector.detect(image, { ...options, signal });
    }, signal);
    const aborted = rejectOnAbort(signal);
    // whichever loses the race must not become an unhandled rejection
    work.catch(() => undefined);
    aborted.promise.catch(() => undefined);
    try {
      const result = await Promise.race([work, aborted.promise]);
      this.metrics.observeResult(result, modelName);
      this.recentTotalMs = this.recentTotalMs === 0 ? result.timings_ms.total : 0.8 * this.recentTotalMs + 0.2 * result.timings_ms.total;
      return { result, queueMs };
    } catch (err) {
      // the library reports an abort as ABORTED; the signal's reason says which abort it was
      const reason: unknown = signal.aborted && (!(err instanceof HttpError) || err.code !== 'QUEUE_FULL') ? signal.reason : err;
      const code = reason instanceof HttpError || reason instanceof DetectError ? reason.code : 'INTERNAL';
      this.metrics.images.inc({ outcome: code, model: modelName });
      throw reason;
    } finally {
      aborted.dispose();
    }
  }

  /**
   * Runs other CPU-heavy work of a request (drawing and encoding a rendered answer) in an
   * inference slot, so it is bounded by the same concurrency. An admitted request holds at most
   * one slot or queue place at a time, so this never meets a full queue.
   */
  async runInSlot<T>(task: () => Promise<T>, signal: AbortSignal): Promise<T> {
    return this.limiter.run(async () => {
      signal.throwIfAborted();
      return task();
    }, signal);
  }

  /**
   * One inference on a generated 640x480 image, so the first real request does not pay for
   * ONNX Runtime's lazy initialisation. Goes through the limiter like any request, so a model
   * loading beside others never runs more inferences than the pool allows.
   */
  async warmUp(detector: ServedDetector): Promise<DetectionResult> {
    const png = await sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 128, g: 128, b: 128 } } })
      .png()
      .toBuffer();
    return this.limiter.run(() => detector.detect(png, {}));
  }
}
