/**
 * cpwc-detect's detection library: Faster R-CNN (CPWC ResNet-50 backbones) on ONNX Runtime, with
 * everything around the two graphs reproduced from torchvision in TypeScript.
 *
 * @example
 * import { Detector, renderDetections } from 'cpwc-detect';
 * const detector = await Detector.load(); // models/shapes-cpwc-r50-fpn
 * const result = await detector.detect(await fs.promises.readFile('shapes.jpg'), { scoreThreshold: 0.5 });
 * await fs.promises.writeFile('shapes-detected.png', await renderDetections(bytes, result.detections));
 * await detector.close();
 */
export { Detector, type PipelineRun } from './detector';
export { DetectError, type DetectErrorCode } from './errors';
export { DEFAULT_EXECUTION_PROVIDER, EXECUTION_PROVIDERS, type ExecutionProvider } from './execution-provider';
export {
  decodeImage,
  sniffImageFormat,
  DEFAULT_MAX_PIXELS,
  SUPPORTED_FORMATS_TEXT,
  type DecodeOptions,
  type ImageFormat,
  type RgbImage,
} from './image';
export { DEFAULT_MODEL_DIR, loadModelDirectory, validateManifest, type ModelDirectory, type ModelManifest } from './model';
export { renderDetections, drawDetections, type RenderOptions } from './render';
export { DEFAULT_SESSION_OPTIONS, type SessionOptions } from './session';
export type { Box, Detection, DetectionResult, DetectOptions, DetectorOptions, StageTimings } from './types';
