/**
 * Coded errors of the COCO evaluator. Every message names the file, where in it
 * (array element, line, or JSON path) and the offending field, so a user can fix the input.
 */
export type CocoEvalErrorCode =
  | 'FILE_UNREADABLE' // missing file, permission denied, a directory, ...
  | 'JSON_MALFORMED' // not valid JSON (or not JSON Lines)
  | 'JSON_TRUNCATED' // the file ends in the middle of a value (half-written results file)
  | 'FIELD_MISSING' // a required field is absent
  | 'FIELD_INVALID' // wrong type, non-finite number, negative size, bbox not [x, y, w, h]
  | 'DUPLICATE_ID' // two images, annotations or categories share an id
  | 'UNKNOWN_IMAGE' // a detection for an image id that the annotation file does not list
  | 'INVALID_ARGUMENT' // command-line usage
  | 'MODEL_CLASSES_UNMATCHED' // batch mode: no model class maps to a dataset category
  | 'RUN_MISMATCH' // batch mode: --out holds a run of another dataset or model
  | 'IMAGES_UNREADABLE' // batch mode: some images could not be read or decoded (see --allow-missing)
  | 'MODEL_MISMATCH' // batch mode --server: a server serves another model than the run's
  | 'SERVER_FAILED' // batch mode --server: a server refused or kept failing
  | 'INTERRUPTED'; // batch mode: stopped by SIGINT/SIGTERM (resumable)

export interface CocoEvalErrorDetails {
  /** The input file the error is about. */
  file?: string;
  /** Where in the file: "element 17", "line 42", "annotations[3]". */
  location?: string;
  /** The field at fault, e.g. "bbox". */
  field?: string;
}

export class CocoEvalError extends Error {
  readonly code: CocoEvalErrorCode;
  readonly file: string | undefined;
  readonly location: string | undefined;
  readonly field: string | undefined;

  constructor(code: CocoEvalErrorCode, message: string, details: CocoEvalErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CocoEvalError';
    this.code = code;
    this.file = details.file;
    this.location = details.location;
    this.field = details.field;
  }
}

/** "file: location: field 'x' ..." prefix used by all validation messages. */
export function where(details: CocoEvalErrorDetails): string {
  const parts: string[] = [];
  if (details.file !== undefined) parts.push(details.file);
  if (details.location !== undefined) parts.push(details.location);
  return parts.join(': ');
}
