/**
 * The worker thread that owns a model's two ONNX Runtime sessions (started by GraphSessions in
 * src/detection/session.ts, which explains why there is a worker). Calls are served one at a time,
 * in arrival order; graph A's feature maps stay here, keyed by request, until graph B consumes them.
 */
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import type { GraphSignature, SessionWorkerData, TensorData, WorkerReply, WorkerRequest, WorkerResult } from './session-messages';

type Ort = typeof import('onnxruntime-node');

const toData = (tensor: Tensor): TensorData => ({ data: tensor.data as Float32Array, dims: tensor.dims });
const signature = (s: InferenceSession): GraphSignature => ({ inputNames: [...s.inputNames], outputNames: [...s.outputNames] });

/** An output the graph declares; a graph that declares it and does not return it is broken. */
function output(results: InferenceSession.OnnxValueMapType, name: string): Tensor {
  const tensor = results[name];
  // invariant: the graphs' outputs were checked against model.json at load (checkGraphSignatures)
  if (tensor === undefined) throw new Error(`the graph returned no output ${name}`);
  return tensor;
}

class SessionWorker {
  private backbone: InferenceSession | undefined;
  private boxHead: InferenceSession | undefined;
  private runOptions: InferenceSession.RunOptions = {};
  private readonly features = new Map<number, Record<string, Tensor>>();

  constructor(private readonly ort: Ort) {}

  async handle(message: WorkerRequest): Promise<WorkerResult> {
    switch (message.type) {
      case 'load': {
        this.runOptions = message.runOptions;
        this.backbone = await this.createSession(message.backboneRpnPath, message.options);
        this.boxHead = await this.createSession(message.boxHeadPath, message.options);
        return { graphs: { backbone_rpn: signature(this.backbone), box_head: signature(this.boxHead) } };
      }
      case 'backbone': {
        const session = this.loaded(this.backbone);
        const inputName = session.inputNames[0];
        // invariant: graph A's single input was checked at load
        if (inputName === undefined) throw new Error('graph A has no input');
        const image = new this.ort.Tensor('float32', message.image.data, message.image.dims);
        const started = performance.now();
        const results = await session.run({ [inputName]: image }, this.runOptions);
        const runMs = performance.now() - started;
        const outputs: Record<string, TensorData> = {};
        const kept: Record<string, Tensor> = {};
        for (const name of session.outputNames) {
          if (message.fetch.includes(name)) outputs[name] = toData(output(results, name));
          else kept[name] = output(results, name);
        }
        this.features.set(message.request, kept);
        return { outputs, runMs };
      }
      case 'boxHead': {
        const session = this.loaded(this.boxHead);
        const kept = this.features.get(message.request);
        // invariant: session.ts sends a request's box-head run only after its graph-A run succeeded
        if (kept === undefined) throw new Error(`no feature maps for request ${message.request}`);
        this.features.delete(message.request);
        const feeds: Record<string, Tensor> = {};
        for (const name of session.inputNames) {
          const roi = message.rois[name];
          const feature = kept[name];
          if (roi !== undefined) feeds[name] = new this.ort.Tensor('float32', roi.data, roi.dims);
          else if (feature !== undefined) feeds[name] = feature;
          // invariant: graph B's inputs were checked against model.json at load
          else throw new Error(`box head input ${name} is neither a RoI input nor a graph A output`);
        }
        const started = performance.now();
        const results = await session.run(feeds, this.runOptions);
        const runMs = performance.now() - started;
        const outputs: Record<string, TensorData> = {};
        for (const name of session.outputNames) outputs[name] = toData(output(results, name));
        return { outputs, runMs };
      }
      case 'release':
        this.features.delete(message.request);
        return {};
      case 'close':
        this.features.clear();
        await this.backbone?.release();
        await this.boxHead?.release();
        this.backbone = undefined;
        this.boxHead = undefined;
        return {};
    }
  }

  private loaded(session: InferenceSession | undefined): InferenceSession {
    // invariant: session.ts sends runs only after the load reply
    if (session === undefined) throw new Error('the sessions are not loaded');
    return session;
  }

  /** A session; when it fails on a provider other than the CPU, the error says whether the CPU takes the same graph (providerFailed). */
  private async createSession(path: string, options: InferenceSession.SessionOptions): Promise<InferenceSession> {
    try {
      return await this.ort.InferenceSession.create(path, options);
    } catch (error) {
      const providers = options.executionProviders ?? [];
      if (providers.length === 0 || providers.every((p) => p === 'cpu')) throw error;
      const cpu = await this.ort.InferenceSession.create(path, { ...options, executionProviders: ['cpu'] }).catch(() => undefined);
      if (cpu === undefined) throw error;
      await cpu.release();
      throw Object.assign(error instanceof Error ? error : new Error(String(error)), { providerFailed: true });
    }
  }
}

function serve(port: MessagePort, data: SessionWorkerData): void {
  const worker = new SessionWorker(require(data.ortPath) as Ort);
  // One call at a time, in arrival order: the chain is the queue.
  let chain: Promise<void> = Promise.resolve();
  port.on('message', (message: WorkerRequest) => {
    const receivedAt = Date.now();
    chain = chain.then(async () => {
      const queuedMs = Date.now() - receivedAt;
      try {
        const result = await worker.handle(message);
        port.postMessage({ call: message.call, ok: true, queuedMs, ...result } satisfies WorkerReply);
      } catch (error) {
        const providerFailed =
          typeof error === 'object' && error !== null && (error as { providerFailed?: unknown }).providerFailed === true;
        port.postMessage({
          call: message.call,
          ok: false,
          message: error instanceof Error ? error.message : String(error),
          providerFailed,
        } satisfies WorkerReply);
      }
    });
  });
}

// invariant: this file is only ever started by session.ts as a worker thread
if (parentPort === null) throw new Error('src/detection/session-worker is a worker thread; start it with new Worker(path)');
serve(parentPort, workerData as SessionWorkerData);
