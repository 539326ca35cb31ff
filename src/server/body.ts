/**
 * Reads an image upload from a request: either the raw body (any content type: the format is
 * detected from the bytes later) or the multipart/form-data field `image` plus text fields.
 * The body limit is enforced while streaming, on the bytes actually received, so a missing or
 * lying Content-Length cannot get more than `maxBodyBytes` into memory.
 */
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import { HttpError } from './errors';
import { MultipartPartCounter, multipartBoundary } from './multipart-parts';

export interface ImageUpload {
  image: Buffer;
  /** Multipart text fields (each name at most once: a repeated field is a 400); empty for a raw body. */
  fields: Map<string, string>;
}

export interface ReadOptions {
  maxBodyBytes: number;
  signal: AbortSignal;
  /** A multipart body without an `image` field is accepted (empty image) instead of IMAGE_MISSING. */
  imageOptional?: boolean;
  /**
   * When set, the body must keep arriving at this average rate (bytes per second, measured from
   * the first second on) or the upload is cut with UPLOAD_TOO_SLOW.
   */
  minBytesPerSecond?: number;
}

/** How often the transfer rate of a rate-limited upload is checked, and the grace before the first check. */
const RATE_CHECK_MS = 1000;

const MAX_FIELDS = 32;
const MAX_PARTS = 64;
const MAX_FILES = 4;
/** The multipart field that carries the image. */
export const IMAGE_FIELD = 'image';

export function isMultipart(req: IncomingMessage): boolean {
  return /^multipart\/form-data\b/i.test(req.headers['content-type'] ?? '');
}

function bodyTooLarge(maxBodyBytes: number): HttpError {
  return new HttpError('BODY_TOO_LARGE', `the request body is larger than this server accepts (${maxBodyBytes} bytes)`, {
    // the rest of the body is not read: the connection cannot be reused
    headers: { Connection: 'close' },
  });
}

function checkDeclaredLength(req: IncomingMessage, maxBodyBytes: number): void {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBodyBytes) throw bodyTooLarge(maxBodyBytes);
}

/**
 * Feeds the request body to `onChunk` until it ends, failing with BODY_TOO_LARGE past the limit
 * and with the signal's reason when it aborts.
 */
function streamBody(req: IncomingMessage, options: ReadOptions, onChunk: (chunk: Buffer) => void, onEnd: () => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let received = 0;
    let settled = false;
    const started = performance.now();
    const rateTimer =
      options.minBytesPerSecond === undefined
        ? undefined
        : setInterval(() => {
            const minRate = options.minBytesPerSecond ?? 0;
            const seconds = (performance.now() - started) / 1000;
            if (received < minRate * seconds) {
              fail(
                new HttpError(
                  'UPLOAD_TOO_SLOW',
                  `the body arrived at ${Math.round(received / seconds)} bytes/s, ` +
                    `under the ${minRate} bytes/s this route needs before its API key is known`,
                  {
                    headers: { Connection: 'close' },
                  },
                ),
              );
            }
          }, RATE_CHECK_MS);
    const cleanup = (): void => {
      if (rateTimer !== undefined) clearInterval(rateTimer);
      req.off('data', onData);
      req.off('end', onReqEnd);
      req.off('error', onError);
      options.signal.removeEventListener('abort', onAbort);
    };
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      cleanup();
      req.pause();
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > options.maxBodyBytes) {
        fail(bodyTooLarge(options.maxBodyBytes));
        return;
      }
      try {
        onChunk(chunk);
      } catch (err) {
        fail(err);
      }
    };
    const onReqEnd = (): void => {
      if (settled) return;
      settled = true;
      cleanup();
      try {
        onEnd();
        resolve();
      } catch (err) {
        reject(err);
      }
    };
    const onError = (err: Error): void => fail(new HttpError('CLIENT_CLOSED', undefined, { cause: err }));
    const onAbort = (): void => fail(options.signal.reason);
    if (options.signal.aborted) {
      onAbort();
      return;
    }
    options.signal.addEventListener('abort', onAbort, { once: true });
    req.on('data', onData);
    req.on('end', onReqEnd);
    req.on('error', onError);
  });
}

async function readRaw(req: IncomingMessage, options: ReadOptions): Promise<ImageUpload> {
  const chunks: Buffer[] = [];
  await streamBody(
    req,
    options,
    (chunk) => chunks.push(chunk),
    () => undefined,
  );
  return { image: Buffer.concat(chunks), fields: new Map() };
}

/** The whole body as bytes, whatever its content type, under the same limits as an upload. */
export async function readRawBody(req: IncomingMessage, options: ReadOptions): Promise<Buffer> {
  checkDeclaredLength(req, options.maxBodyBytes);
  return (await readRaw(req, options)).image;
}

async function readMultipart(req: IncomingMessage, options: ReadOptions): Promise<ImageUpload> {
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      // latin1 keeps every byte of a text part: an image sent as a text field survives intact
      defCharset: 'latin1',
      limits: { fields: MAX_FIELDS, parts: MAX_PARTS, files: MAX_FILES, fieldSize: options.maxBodyBytes, fieldNameSize: 200 },
    });
  } catch (cause) {
    throw new HttpError(
      'MULTIPART_INVALID',
      `the multipart/form-data body is malformed: ${cause instanceof Error ? cause.message : String(cause)}`,
    );
  }
  const fields = new Map<string, string>();
  const imageChunks: Buffer[] = [];
  let sawImage = false;
  // busboy skips parts without Content-Disposition: form-data silently; they are counted here
  const counter = new MultipartPartCounter(multipartBoundary(req.headers['content-type'] ?? '') ?? '');
  let reportedParts = 0;
  // the first problem ends the upload at once: a parser over a limit is never fed (nor ended)
  // again, so waiting for the rest of the body would hold the request's admission place
  const stop = new AbortController();
  const stopped = new Promise<never>((_, reject) => {
    stop.signal.addEventListener('abort', () => reject(stop.signal.reason), { once: true });
  });
  stopped.catch(() => undefined);
  let parseError: HttpError | undefined;
  const failParse = (err: HttpError): void => {
    if (parseError !== undefined) return;
    parseError = err;
    stop.abort(err);
  };
  const repeated = (name: string): HttpError =>
    new HttpError('INVALID_PARAMETER', `the multipart field '${name}' is given more than once; send each field once`, {
      headers: { Connection: 'close' },
    });
  const parsed = new Promise<void>((resolve) => {
    parser.on('close', () => resolve());
    parser.on('error', (err: unknown) => {
      failParse(
        new HttpError(
          'MULTIPART_INVALID',
          `the multipart/form-data body is malformed: ${err instanceof Error ? err.message : String(err)}`,
        ),
      );
      resolve();
    });
  });
  const unnamed = (): HttpError =>
    new HttpError(
      'MULTIPART_INVALID',
      'the multipart/form-data body is malformed: a part has no name (Content-Disposition: form-data; name="…")',
    );
  parser.on('file', (name, stream) => {
    reportedParts += 1;
    // a part cut short (limit, malformed body) errors its stream; the parser reports it once
    stream.on('error', () => undefined);
    if (!name) {
      stream.resume();
      failParse(unnamed());
      return;
    }
    if (name !== IMAGE_FIELD) {
      stream.resume();
      return;
    }
    if (sawImage) {
      stream.resume();
      failParse(repeated(name));
      return;
    }
    sawImage = true;
    stream.on('data', (chunk: Buffer) => imageChunks.push(chunk));
  });
  parser.on('field', (name, value) => {
    reportedParts += 1;
    if (!name) {
      failParse(unnamed());
      return;
    }
    if (name === IMAGE_FIELD) {
      if (sawImage) {
        failParse(repeated(name));
        return;
      }
      sawImage = true;
      imageChunks.push(Buffer.from(value, 'latin1'));
      return;
    }
    if (fields.has(name)) {
      failParse(repeated(name));
      return;
    }
    // text parts were decoded as latin1 (see above); recover their UTF-8 text
    fields.set(name, Buffer.from(value, 'latin1').toString('utf8'));
  });
  const overLimit = (what: string): HttpError =>
    new HttpError('MULTIPART_TOO_MANY_PARTS', `the multipart/form-data body has too many ${what}`, { headers: { Connection: 'close' } });
  parser.on('fieldsLimit', () => failParse(overLimit(`form fields (at most ${MAX_FIELDS})`)));
  parser.on('partsLimit', () => failParse(overLimit(`parts (at most ${MAX_PARTS})`)));
  parser.on('filesLimit', () => failParse(overLimit(`file parts (at most ${MAX_FILES})`)));

  try {
    await streamBody(
      req,
      { ...options, signal: AbortSignal.any([options.signal, stop.signal]) },
      (chunk) => {
        if (parseError !== undefined) return;
        counter.push(chunk);
        parser.write(chunk);
      },
      () => {
        if (parseError === undefined) parser.end();
      },
    );
    await Promise.race([parsed, stopped]);
  } catch (err) {
    parser.destroy();
    throw err;
  }
  if (parseError !== undefined) throw parseError;
  if (counter.parts > reportedParts) {
    throw new HttpError(
      'MULTIPART_INVALID',
      'the multipart/form-data body is malformed: a part has no Content-Disposition: form-data header (RFC 7578)',
    );
  }
  if (!sawImage && options.imageOptional !== true)
    throw new HttpError('IMAGE_MISSING', `no image: the multipart body has no field '${IMAGE_FIELD}'`);
  return { image: Buffer.concat(imageChunks), fields };
}

/**
 * @example
 * const { image, fields } = await readImageUpload(req, { maxBodyBytes: 20 << 20, signal });
 */
export async function readImageUpload(req: IncomingMessage, options: ReadOptions): Promise<ImageUpload> {
  checkDeclaredLength(req, options.maxBodyBytes);
  return isMultipart(req) ? readMultipart(req, options) : readRaw(req, options);
}
