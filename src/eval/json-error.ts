/**
 * Where a JSON text stops being valid. Node 20's JSON.parse messages do not always carry a
 * position, so after a failed parse we scan the text once more with a small recursive-descent
 * checker (only on the error path; speed does not matter here).
 */

export interface JsonErrorPosition {
  /** UTF-16 offset of the first character that cannot continue a valid document. */
  offset: number;
  /** True when the text is a valid prefix: it ends before the value is complete. */
  truncated: boolean;
  line: number;
  column: number;
}

class Stop extends Error {
  constructor(readonly offset: number) {
    super('json');
  }
}

export function findJsonError(text: string): JsonErrorPosition | undefined {
  let pos = 0;
  const n = text.length;
  const ws = (): void => {
    while (pos < n) {
      const c = text.charCodeAt(pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      pos++;
    }
  };
  const expect = (ok: boolean): void => {
    if (!ok) throw new Stop(pos);
  };
  const literal = (word: string): void => {
    for (let i = 0; i < word.length; i++, pos++) expect(text[pos] === word[i]);
  };
  const string = (): void => {
    pos++;
    for (;;) {
      expect(pos < n);
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        pos++;
        return;
      }
      expect(c >= 0x20);
      if (c === 0x5c) {
        pos++;
        expect(pos < n);
        const e = text[pos]!;
        if (e === 'u') {
          for (let i = 0; i < 4; i++) {
            pos++;
            expect(pos < n && /[0-9a-fA-F]/.test(text[pos]!));
          }
        } else {
          expect('"\\/bfnrt'.includes(e));
        }
      }
      pos++;
    }
  };
  const number = (): void => {
    const match = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(pos, pos + 400));
    expect(match !== null && match[0].length > 0);
    pos += match![0].length;
  };
  const value = (): void => {
    ws();
    expect(pos < n);
    const c = text[pos]!;
    if (c === '{') {
      pos++;
      ws();
      if (text[pos] === '}') {
        pos++;
        return;
      }
      for (;;) {
        ws();
        expect(text[pos] === '"');
        string();
        ws();
        expect(text[pos] === ':');
        pos++;
        value();
        ws();
        expect(pos < n && (text[pos] === ',' || text[pos] === '}'));
        if (text[pos++] === '}') return;
      }
    } else if (c === '[') {
      pos++;
      ws();
      if (text[pos] === ']') {
        pos++;
        return;
      }
      for (;;) {
        value();
        ws();
        expect(pos < n && (text[pos] === ',' || text[pos] === ']'));
        if (text[pos++] === ']') return;
      }
    } else if (c === '"') {
      string();
    } else if (c === 't') {
      literal('true');
    } else if (c === 'f') {
      literal('false');
    } else if (c === 'n') {
      literal('null');
    } else {
      number();
    }
  };
  try {
    value();
    ws();
    expect(pos === n);
    return undefined;
  } catch (err) {
    if (!(err instanceof Stop)) throw err;
    const offset = Math.min(err.offset, n);
    const before = text.slice(0, offset);
    const line = before.split('\n').length;
    return { offset, truncated: offset >= n, line, column: offset - before.lastIndexOf('\n') };
  }
}
