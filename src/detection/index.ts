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
export { DETECT_ERROR_MESSAGES, DetectError, type DetectErrorCode } from './errors';
export { DEFAULT_EXECUTION_PROVIDER, EXECUTION_PROVIDERS, type ExecutionProvider } from './execution-provider';
export { decodeImage, DEFAULT_MAX_PIXELS, type DecodeOptions, type RgbImage } from './image';
export {
  FORMATS,
  SUPPORTED_FORMATS_TEXT,
  SUPPORTED_FORMATS_DETAIL,
  SUPPORTED_MIME_TYPES,
  formatSpec,
  sniffImageFormat,
  type FormatSpec,
  type ImageFormat,
} from './formats';
export {
  PLACEHOLDER_CLASS,
  BACKGROUND_CLASS_ID,
  isUsableClassId,
  usableClasses,
  resolveClass,
  resolveClasses,
  describeClasses,
  unknownClassMessage,
  type UsableClass,
} from './classes';
export { MAX_DETECTIONS_LIMIT } from './limits';
export { DEFAULT_MODEL_DIR, loadModelDirectory, validateManifest, type ModelDirectory, type ModelManifest } from './model';
export { renderDetections, drawDetections, type RenderOptions } from './render';
export { DEFAULT_SESSION_OPTIONS, type SessionOptions } from './session';
export type { Box, Detection, DetectionResult, DetectOptions, DetectorOptions, StageTimings } from './types';
