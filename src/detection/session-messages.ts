/**
 * The messages between GraphSessions (src/detection/session.ts) and its worker thread
 * (src/detection/session-worker.ts): one type for each direction, shared by both sides.
 */
import type { InferenceSession } from 'onnxruntime-node';

/** A float32 tensor crossing the thread boundary. */
export interface TensorData {
  data: Float32Array;
  dims: readonly number[];
}

export interface GraphSignature {
  inputNames: string[];
  outputNames: string[];
}

/** What the worker is started with (`workerData`). */
export interface SessionWorkerData {
  /** Resolved path of onnxruntime-node, so the worker loads the same copy as its host. */
  ortPath: string;
}

export interface LoadMessage {
  type: 'load';
  backboneRpnPath: string;
  boxHeadPath: string;
  options: InferenceSession.SessionOptions;
  runOptions: InferenceSession.RunOptions;
}
export interface RunBackboneMessage {
  type: 'backbone';
  request: number;
  image: TensorData;
  /** Outputs to send back; the rest (feature maps) stay in the worker for `boxHead`. */
  fetch: string[];
}
export interface RunBoxHeadMessage {
  type: 'boxHead';
  request: number;
  rois: Record<string, TensorData>;
}
export interface ReleaseMessage {
  type: 'release';
  request: number;
}
export interface CloseMessage {
  type: 'close';
}
export type WorkerCall = LoadMessage | RunBackboneMessage | RunBoxHeadMessage | ReleaseMessage | CloseMessage;
/** A call as posted to the worker: numbered, so the reply can be matched to it. */
export type WorkerRequest = WorkerCall & { call: number; sentAt: number };

/** A call's result, without the envelope. */
export interface WorkerResult {
  graphs?: Record<string, GraphSignature>;
  outputs?: Record<string, TensorData>;
  /** Time inside session.run. */
  runMs?: number;
  /** Time the call waited in the worker behind other calls. */
  queuedMs?: number;
}
export type WorkerSuccess = WorkerResult & { call: number; ok: true };
export type WorkerFailure = { call: number; ok: false; message: string; providerFailed?: boolean };
export type WorkerReply = WorkerSuccess | WorkerFailure;
