/**
 * Coded errors of the detection library. The HTTP layer maps `code` to a status
 * (see src/server/errors.ts); nothing else should switch on messages.
 */
import { SUPPORTED_FORMATS_TEXT } from './formats';

export type DetectErrorCode =
  | 'IMAGE_EMPTY' // zero-byte input
  | 'IMAGE_UNSUPPORTED_FORMAT' // bytes are not an image format we decode
  | 'IMAGE_DECODE_FAILED' // corrupt or truncated image
  | 'IMAGE_TOO_LARGE' // pixel count over the limit
  | 'INVALID_OPTION' // a detect option out of range
  | 'ABORTED' // the caller aborted (signal)
  | 'MODEL_INVALID' // model directory unreadable, model.json malformed, checksum mismatch
  | 'EXECUTION_PROVIDER_UNAVAILABLE' // the chosen ONNX Runtime execution provider (cuda, webgpu) cannot start here
  | 'DETECTOR_CLOSED'; // detect() after close()

/**
 * The library's message of each code when nothing more specific is known: the one source of these
 * texts (the server's ERRORS rows for library codes reuse them). Most throws add the specifics.
 */
export const DETECT_ERROR_MESSAGES: Readonly<Record<DetectErrorCode, string>> = {
  IMAGE_EMPTY: 'the image is empty (0 bytes)',
  IMAGE_UNSUPPORTED_FORMAT: `the bytes are not an image in a supported format (${SUPPORTED_FORMATS_TEXT})`,
  IMAGE_DECODE_FAILED: 'the image is corrupt or truncated',
  IMAGE_TOO_LARGE: 'the image has more pixels than the limit',
  INVALID_OPTION: 'a detection option is invalid',
  ABORTED: 'the request was aborted',
  MODEL_INVALID: 'the model could not be used',
  EXECUTION_PROVIDER_UNAVAILABLE: 'the execution provider cannot start here',
  DETECTOR_CLOSED: 'the detector is closed',
};

export class DetectError extends Error {
  readonly code: DetectErrorCode;

  /** `message` defaults to the code's DETECT_ERROR_MESSAGES text. */
  constructor(code: DetectErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? DETECT_ERROR_MESSAGES[code], options);
    this.name = 'DetectError';
    this.code = code;
  }
}
