/**
 * Coded errors of the detection library. The HTTP layer maps `code` to a status
 * (see src/server/errors.ts); nothing else should switch on messages.
 */
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

export class DetectError extends Error {
  readonly code: DetectErrorCode;

  constructor(code: DetectErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DetectError';
    this.code = code;
  }
}
