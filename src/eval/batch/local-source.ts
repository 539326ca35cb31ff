/**
 * Detection in this process from a model directory. The ONNX sessions are created on the first
 * image, so a merge run whose shards did every image does not load the model at all.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { DetectError } from '../../detection/errors';
import type { Detector } from '../../detection/detector';
import type { ExecutionProvider } from '../../detection/execution-provider';
import { loadModelDirectory } from '../../detection/model';
import { CocoEvalError } from '../errors';
import type { DetectionSource, SourceResult } from './detection-source';
import { identityOfManifest } from './model-identity';

/** Image failures that skip the image; anything else (model, runtime) stops the run. */
const SKIPPABLE_DETECT_ERRORS = new Set(['IMAGE_EMPTY', 'IMAGE_UNSUPPORTED_FORMAT', 'IMAGE_DECODE_FAILED', 'IMAGE_TOO_LARGE']);

/** How the model runs in this process: ONNX Runtime's threads and execution provider (defaults when absent). */
export interface LocalRuntime {
  intraOpThreads?: number | undefined;
  executionProvider?: ExecutionProvider | undefined;
}

export async function openLocalSource(modelDir: string, runtime: LocalRuntime = {}): Promise<DetectionSource> {
  const manifestPath = path.join(modelDir, 'model.json');
  let bytes: Buffer;
  try {
    bytes = readFileSync(manifestPath);
  } catch (err) {
    throw new CocoEvalError(
      'FILE_UNREADABLE',
      `${manifestPath}: cannot read model.json: ${(err as Error).message}`,
      { file: manifestPath },
      { cause: err },
    );
  }
  const directory = await loadModelDirectory(modelDir, { verifyChecksums: false });
  let loading: Promise<Detector> | undefined;
  const detector = async (): Promise<Detector> => {
    loading ??= import('../../detection/detector').then(({ Detector }) =>
      Detector.load(modelDir, {
        ...(runtime.intraOpThreads === undefined ? {} : { intraOpThreads: runtime.intraOpThreads }),
        ...(runtime.executionProvider === undefined ? {} : { executionProvider: runtime.executionProvider }),
      }),
    );
    return loading;
  };
  return {
    identity: identityOfManifest(directory.manifest),
    classes: directory.manifest.classes,
    modelDir: directory.dir,
    modelJsonSha256: createHash('sha256').update(bytes).digest('hex'),
    description: 'local',
    concurrency: 1,
    async detect(image: Buffer, scoreThreshold: number | undefined): Promise<SourceResult> {
      const model = await detector();
      try {
        const result = await model.detect(image, scoreThreshold === undefined ? {} : { scoreThreshold });
        return { ok: true, detections: result.detections };
      } catch (err) {
        if (!(err instanceof DetectError) || !SKIPPABLE_DETECT_ERRORS.has(err.code)) throw err;
        return { ok: false, reason: `${err.code}: ${err.message}` };
      }
    },
    stats: () => ({}),
    async close(): Promise<void> {
      if (loading !== undefined) await (await loading).close();
    },
  };
}
