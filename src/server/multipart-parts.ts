/**
 * Counts the body parts of a multipart/form-data stream by its delimiters (RFC 2046), reading the
 * bytes as busboy does. busboy skips a part without `Content-Disposition: form-data` (an empty
 * part, a part with no headers) without a word; RFC 7578 says every part MUST carry one. The body
 * reader compares this count with the parts busboy reported and refuses a body that has more.
 */

/** The `boundary` parameter of a multipart Content-Type (quoted or not); undefined when absent. */
export function multipartBoundary(contentType: string): string | undefined {
  const match = /;\s*boundary\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(contentType);
  if (match === null) return undefined;
  return match[1] !== undefined ? match[1].replace(/\\(.)/g, '$1') : match[2];
}

export class MultipartPartCounter {
  private readonly delimiter: Buffer;
  /** The bytes a delimiter split between two chunks may start in; busboy reads the body as if a CRLF preceded it. */
  private tail: Buffer = Buffer.from('\r\n');
  private delimiters = 0;

  constructor(boundary: string) {
    this.delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
  }

  push(chunk: Buffer): void {
    const data = Buffer.concat([this.tail, chunk]);
    for (let at = data.indexOf(this.delimiter); at !== -1; at = data.indexOf(this.delimiter, at + this.delimiter.length)) {
      this.delimiters += 1;
    }
    // shorter than a delimiter: a delimiter counted above is never counted again
    this.tail = data.subarray(Math.max(0, data.length - (this.delimiter.length - 1)));
  }

  /** The parts between the delimiters: every delimiter but the closing one. */
  get parts(): number {
    return Math.max(0, this.delimiters - 1);
  }
}
