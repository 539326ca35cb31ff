/**
 * Prometheus metrics on a registry of the app's own (never prom-client's global one), so several
 * apps in one process (tests) do not share or clash.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DetectionResult, StageTimings } from '../detection/types';

const PREFIX = 'cpwc_';

/** Seconds; spans Frigate's 0.1 s budget up to the default 30 s deadline. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface ServerMetrics {
  registry: Registry;
  httpRequestDuration: Histogram<'method' | 'route' | 'status'>;
  inferenceStageDuration: Histogram<'stage' | 'model'>;
  queueWait: Histogram;
  queueDepth: Gauge;
  inferencesInFlight: Gauge;
  /** Detection requests admitted and not yet answered, by admission pool. */
  admittedRequests: Gauge<'pool'>;
  rejectedRequests: Counter<'reason'>;
  images: Counter<'outcome' | 'model'>;
  detections: Counter<'label' | 'model'>;
  /** 1 for the state each model is in now (loading, ready, failed, unloaded), 0 for the others. */
  modelState: Gauge<'model' | 'state'>;
  /** Loads that failed (bad model.json, checksum mismatch, corrupt graph, warm-up error). */
  modelLoadFailures: Counter<'model'>;
  /** Records a finished inference of `model`: per-stage durations, one image, its detections. */
  observeResult(result: DetectionResult, model: string): void;
}

export function createMetrics(options: { collectProcessMetrics?: boolean } = {}): ServerMetrics {
  const registry = new Registry();
  if (options.collectProcessMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: PREFIX });
  const registers = [registry];
  const httpRequestDuration = new Histogram({
    name: `${PREFIX}http_request_duration_seconds`,
    help: 'HTTP request duration by route template, method and status code',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const inferenceStageDuration = new Histogram({
    name: `${PREFIX}inference_stage_duration_seconds`,
    help:
      'Duration of each detection pipeline stage ' +
      '(decode, transform, backbone_rpn, rpn_postprocess, box_head, postprocess, total), by model',
    labelNames: ['stage', 'model'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const queueWait = new Histogram({
    name: `${PREFIX}queue_wait_seconds`,
    help: 'Time a request waited for an inference slot',
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const queueDepth = new Gauge({ name: `${PREFIX}queue_depth`, help: 'Requests waiting for an inference slot', registers });
  const inferencesInFlight = new Gauge({ name: `${PREFIX}inferences_in_flight`, help: 'Inferences running now', registers });
  const admittedRequests = new Gauge({
    name: `${PREFIX}admitted_requests`,
    help:
      'Detection requests admitted and not yet answered (uploading, queued or running), ' +
      'by pool: authenticated, or key_in_body (API key in the body, not yet checked)',
    labelNames: ['pool'] as const,
    registers,
  });
  admittedRequests.set({ pool: 'authenticated' }, 0);
  admittedRequests.set({ pool: 'key_in_body' }, 0);
  const rejectedRequests = new Counter({
    name: `${PREFIX}rejected_requests_total`,
    help: 'Requests refused or dropped without a result, by reason (error code)',
    labelNames: ['reason'] as const,
    registers,
  });
  const images = new Counter({
    name: `${PREFIX}images_total`,
    help: 'Images received for detection, by outcome (ok or the error code) and model',
    labelNames: ['outcome', 'model'] as const,
    registers,
  });
  const detections = new Counter({
    name: `${PREFIX}detections_total`,
    help: 'Detections returned, by class label and model',
    labelNames: ['label', 'model'] as const,
    registers,
  });
  const modelState = new Gauge({
    name: `${PREFIX}model_state`,
    help: 'Each served model: 1 for its current state (loading, ready, failed, unloaded), 0 for the others',
    labelNames: ['model', 'state'] as const,
    registers,
  });
  const modelLoadFailures = new Counter({
    name: `${PREFIX}model_load_failures_total`,
    help: 'Model loads that failed (bad model.json, checksum mismatch, corrupt graph, failed warm-up), by model',
    labelNames: ['model'] as const,
    registers,
  });
  const stageNames: Array<keyof StageTimings> = [
    'decode',
    'transform',
    'backbone_rpn',
    'rpn_postprocess',
    'box_head',
    'postprocess',
    'total',
  ];

  return {
    registry,
    httpRequestDuration,
    inferenceStageDuration,
    queueWait,
    queueDepth,
    inferencesInFlight,
    admittedRequests,
    rejectedRequests,
    images,
    detections,
    modelState,
    modelLoadFailures,
    observeResult(result: DetectionResult, model: string): void {
      for (const stage of stageNames) inferenceStageDuration.observe({ stage, model }, result.timings_ms[stage] / 1000);
      images.inc({ outcome: 'ok', model });
      for (const detection of result.detections) detections.inc({ label: detection.label, model });
    },
  };
}
