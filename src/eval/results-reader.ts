/**
 * Streaming reader for COCO results files: a JSON array of detection objects, or JSON Lines
 * (one detection object per line). The file is read in fixed-size chunks and each record is
 * parsed on its own, so multi-gigabyte files never become one string. A file that ends in the
 * middle of a record (a results writer that crashed) is reported with where it broke.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { CocoEvalError } from './errors';

export type ResultsFormat = 'json-array' | 'json-lines';

/** Called once per record, in file order. `index` counts records from 0; `line` is 1-based. */
export type RecordHandler = (record: unknown, index: number, line: number, format: ResultsFormat) => void;

/** How errors refer to a record: "element 17 (line 3)" for arrays, "line 42" for JSON Lines. */
export function recordLocation(format: ResultsFormat, index: number, line: number): string {
  return format === 'json-array' ? `element ${index} (line ${line})` : `line ${line}`;
}

const DEFAULT_CHUNK_BYTES = 1 << 22;

export interface ReadOptions {
  /** Bytes read per system call (default 4 MiB); the window grows only for a record larger than half of it. */
  chunkBytes?: number;
}

enum ArrayState {
  BeforeArray,
  FirstElementOrEnd,
  Element,
  InObject,
  CommaOrEnd,
  AfterArray,
}

const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;

function isWhitespace(c: number): boolean {
  return c === SPACE || c === LF || c === CR || c === TAB;
}

/** Byte window over a file: `bytes[0, length)` holds file bytes from absolute offset `base`. */
class FileWindow {
  bytes: Buffer;
  length = 0;
  base = 0;
  eof = false;

  constructor(
    private readonly fd: number,
    private readonly file: string,
    chunkBytes: number,
  ) {
    this.bytes = Buffer.allocUnsafe(Math.max(2, chunkBytes));
  }

  /** Drops bytes before `keepFrom`, reads more after the rest; returns how far the window shifted. */
  refill(keepFrom: number): number {
    const kept = this.length - keepFrom;
    if (keepFrom > 0) this.bytes.copy(this.bytes, 0, keepFrom, this.length);
    if (kept >= this.bytes.length / 2) {
      // A single record fills half the window: grow so each refill still reads a full chunk.
      const bigger = Buffer.allocUnsafe(this.bytes.length * 2);
      this.bytes.copy(bigger, 0, 0, kept);
      this.bytes = bigger;
    }
    this.base += keepFrom;
    this.length = kept;
    let read: number;
    try {
      read = readSync(this.fd, this.bytes, kept, this.bytes.length - kept, null);
    } catch (err) {
      throw new CocoEvalError(
        'FILE_UNREADABLE',
        `${this.file}: read failed: ${(err as Error).message}`,
        { file: this.file },
        { cause: err },
      );
    }
    this.length += read;
    if (read === 0) this.eof = true;
    return keepFrom;
  }
}

/** Streams the records of a results file to `onRecord`; returns the detected format and record count. */
export function readResultsFile(
  file: string,
  onRecord: RecordHandler,
  options: ReadOptions = {},
): { format: ResultsFormat; records: number } {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw new CocoEvalError('FILE_UNREADABLE', `${file}: cannot open results file: ${(err as Error).message}`, { file }, { cause: err });
  }
  try {
    const window = new FileWindow(fd, file, options.chunkBytes ?? DEFAULT_CHUNK_BYTES);
    window.refill(0);
    let start = 0;
    let newlines = 0;
    if (window.length >= 3 && window.bytes[0] === 0xef && window.bytes[1] === 0xbb && window.bytes[2] === 0xbf) start = 3;
    for (;;) {
      while (start < window.length && isWhitespace(window.bytes[start]!)) {
        if (window.bytes[start] === LF) newlines++;
        start++;
      }
      if (start < window.length || window.eof) break;
      start -= window.refill(start);
    }
    if (start >= window.length) {
      throw new CocoEvalError('JSON_MALFORMED', `${file}: the file is empty; expected a JSON array of detections or JSON Lines`, {
        file,
      });
    }
    const first = window.bytes[start]!;
    if (first === OPEN_BRACKET) return { format: 'json-array', records: readArray(window, file, onRecord, start, newlines + 1) };
    if (first === OPEN_BRACE) return { format: 'json-lines', records: readLines(window, file, onRecord, start, newlines) };
    throw new CocoEvalError(
      'JSON_MALFORMED',
      `${file}: expected a JSON array of detections ('[') or JSON Lines (one '{...}' per line), ` +
        `found ${JSON.stringify(String.fromCharCode(first))}`,
      { file, location: 'byte 0' },
    );
  } finally {
    closeSync(fd);
  }
}

function parseRecord(text: string, file: string, location: string, truncatedIfInvalid: boolean): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const detail = (err as Error).message;
    if (truncatedIfInvalid) {
      throw new CocoEvalError(
        'JSON_TRUNCATED',
        `${file}: ${location}: the file ends in the middle of this record (${detail})`,
        { file, location },
        { cause: err },
      );
    }
    throw new CocoEvalError(
      'JSON_MALFORMED',
      `${file}: ${location}: not a valid JSON object (${detail})`,
      { file, location },
      { cause: err },
    );
  }
}

/** Reads JSON Lines from `pos`, the start of line `linesBefore + 1`. */
function readLines(window: FileWindow, file: string, onRecord: RecordHandler, start: number, linesBefore: number): number {
  let records = 0;
  let line = linesBefore;
  let pos = start;
  for (;;) {
    const view = window.bytes.subarray(0, window.length);
    let newline = view.indexOf(LF, pos);
    if (newline === -1 && !window.eof) {
      pos -= window.refill(pos);
      continue;
    }
    const endOfFile = newline === -1;
    if (endOfFile) newline = window.length;
    line++;
    let s = pos;
    let e = newline;
    while (s < e && isWhitespace(view[s]!)) s++;
    while (e > s && isWhitespace(view[e - 1]!)) e--;
    if (s < e) {
      const location = `line ${line}`;
      if (view[s] !== OPEN_BRACE) {
        throw new CocoEvalError(
          'JSON_MALFORMED',
          `${file}: ${location}: expected a JSON object per line (JSON Lines), found ${JSON.stringify(String.fromCharCode(view[s]!))}`,
          {
            file,
            location,
          },
        );
      }
      const record = parseRecord(view.toString('utf8', s, e), file, location, endOfFile);
      onRecord(record, records, line, 'json-lines');
      records++;
    }
    if (endOfFile) return records;
    pos = newline + 1;
  }
}

/** Reads a JSON array whose '[' is at `start`, on line `startLine`. */
function readArray(window: FileWindow, file: string, onRecord: RecordHandler, start: number, startLine: number): number {
  let state = ArrayState.BeforeArray;
  let records = 0;
  let line = startLine;
  let pos = start;
  let objectStart = 0;
  let objectLine = 0;
  let depth = 0;
  let inString = false;
  let escaped = false;
  const fail = (code: 'JSON_MALFORMED' | 'JSON_TRUNCATED', what: string): never => {
    const location = `line ${line}, byte ${window.base + pos}`;
    throw new CocoEvalError(code, `${file}: ${location}: ${what}`, { file, location });
  };
  for (;;) {
    if (pos >= window.length) {
      if (!window.eof) {
        const shift = window.refill(state === ArrayState.InObject ? objectStart : pos);
        pos -= shift;
        objectStart -= shift;
        continue;
      }
      if (state === ArrayState.AfterArray) return records;
      if (state === ArrayState.InObject) {
        const location = recordLocation('json-array', records, objectLine);
        throw new CocoEvalError(
          'JSON_TRUNCATED',
          `${file}: ${location}: the file ends in the middle of this detection (truncated results file)`,
          {
            file,
            location,
          },
        );
      }
      return fail('JSON_TRUNCATED', `the file ends after ${records} detection(s) without the closing ']' (truncated results file)`);
    }
    const bytes = window.bytes;
    if (state === ArrayState.InObject) {
      // Hot loop: find the end of the current object, honouring strings and nesting.
      const end = window.length;
      for (; pos < end; pos++) {
        const c = bytes[pos]!;
        if (inString) {
          if (escaped) escaped = false;
          else if (c === BACKSLASH) escaped = true;
          else if (c === QUOTE) inString = false;
          else if (c === LF) line++;
        } else if (c === QUOTE) inString = true;
        else if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
        else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
          if (--depth === 0) break;
        } else if (c === LF) line++;
      }
      if (pos === end) continue;
      const location = recordLocation('json-array', records, objectLine);
      const record = parseRecord(bytes.toString('utf8', objectStart, pos + 1), file, location, false);
      onRecord(record, records, objectLine, 'json-array');
      records++;
      pos++;
      state = ArrayState.CommaOrEnd;
      continue;
    }
    const c = bytes[pos]!;
    if (isWhitespace(c)) {
      if (c === LF) line++;
      pos++;
      continue;
    }
    switch (state) {
      case ArrayState.BeforeArray:
        if (c !== OPEN_BRACKET) fail('JSON_MALFORMED', "expected '['");
        state = ArrayState.FirstElementOrEnd;
        break;
      case ArrayState.FirstElementOrEnd:
      case ArrayState.Element:
        if (c === CLOSE_BRACKET && state === ArrayState.FirstElementOrEnd) {
          state = ArrayState.AfterArray;
        } else if (c === OPEN_BRACE) {
          state = ArrayState.InObject;
          objectStart = pos;
          objectLine = line;
          depth = 1;
          inString = false;
          escaped = false;
        } else {
          fail('JSON_MALFORMED', `element ${records}: expected a detection object '{', found ${JSON.stringify(String.fromCharCode(c))}`);
        }
        break;
      case ArrayState.CommaOrEnd:
        if (c === COMMA) state = ArrayState.Element;
        else if (c === CLOSE_BRACKET) state = ArrayState.AfterArray;
        else fail('JSON_MALFORMED', `after element ${records - 1}: expected ',' or ']', found ${JSON.stringify(String.fromCharCode(c))}`);
        break;
      case ArrayState.AfterArray:
        fail('JSON_MALFORMED', `unexpected ${JSON.stringify(String.fromCharCode(c))} after the closing ']'`);
        break;
      default:
        break;
    }
    pos++;
  }
}
