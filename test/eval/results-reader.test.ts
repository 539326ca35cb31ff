import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CocoEvalError } from '../../src/eval/errors';
import { evaluateFiles } from '../../src/eval/evaluate';
import { readResultsFile, type ResultsFormat } from '../../src/eval/results-reader';
import { cocoEvalError, tempDir, writeSyntheticCase, writeTemp } from '../helpers/eval';

function readAll(file: string, chunkBytes?: number): { records: unknown[]; lines: number[]; format: ResultsFormat } {
  const records: unknown[] = [];
  const lines: number[] = [];
  const { format } = readResultsFile(
    file,
    (record, _index, line) => {
      records.push(record);
      lines.push(line);
    },
    chunkBytes === undefined ? {} : { chunkBytes },
  );
  return { records, lines, format };
}

function readError(file: string, chunkBytes?: number): CocoEvalError {
  return cocoEvalError(() => readAll(file, chunkBytes));
}

const dir = tempDir();
const synthetic = writeSyntheticCase(join(dir, 'synthetic'), { seed: 3, images: 12, categories: 5 });
const basicDt = synthetic.dt;
const basicRecords = JSON.parse(readFileSync(basicDt, 'utf8')) as Record<string, unknown>[];
const jsonl = writeTemp(dir, 'basic.jsonl', `${basicRecords.map((r) => JSON.stringify(r)).join('\n')}\n`);

describe('JSON array', () => {
  it('streams every element in order, whatever the chunk size', () => {
    for (const chunkBytes of [undefined, 3, 64, 1000]) {
      const { records, format } = readAll(basicDt, chunkBytes);
      expect(format).toBe('json-array');
      expect(records).toEqual(basicRecords);
    }
  });

  it('handles strings containing brackets, quotes and newlines escapes, nested values and a BOM', () => {
    const text =
      '\ufeff[\n {"image_id": 1, "note": "a ]}\\"[{ \\\\", "segmentation": [[1,2],[3,4]], "x": {"y": [1]}},\n {"image_id": 2}\n]\n';
    const { records, lines } = readAll(writeTemp(dir, 'tricky.json', text), 5);
    expect(records).toEqual([
      {
        image_id: 1,
        note: 'a ]}"[{ \\',
        segmentation: [
          [1, 2],
          [3, 4],
        ],
        x: { y: [1] },
      },
      { image_id: 2 },
    ]);
    expect(lines).toEqual([2, 3]);
  });

  it('accepts an empty array', () => {
    expect(readAll(writeTemp(dir, 'empty-array.json', ' [ ] ')).records).toEqual([]);
  });

  it('reports an array cut in the middle of an element as truncated, naming the element', () => {
    const full = readFileSync(basicDt, 'utf8');
    const cut = writeTemp(dir, 'cut.json', full.slice(0, full.indexOf('{"image_id"', 1000) + 25));
    const err = readError(cut, 256);
    expect(err.code).toBe('JSON_TRUNCATED');
    const element = basicRecords.findIndex((_, i) => JSON.stringify(basicRecords.slice(0, i + 1)).length > 1000);
    expect(err.message).toContain(`${cut}: element ${element + 1} (line 1)`);
    expect(err.message).toContain('ends in the middle of this detection');
  });

  it('reports an array without its closing bracket as truncated', () => {
    const err = readError(writeTemp(dir, 'open.json', '[{"a": 1},\n{"a": 2}\n'));
    expect(err.code).toBe('JSON_TRUNCATED');
    expect(err.message).toContain("after 2 detection(s) without the closing ']'");
  });

  it.each([
    ['[{"a": 1},]', 'JSON_MALFORMED', 'element 1: expected a detection object \'{\', found "]"'],
    ['[{"a": 1} {"a": 2}]', 'JSON_MALFORMED', "after element 0: expected ',' or ']'"],
    ['[{"a": 1}] x', 'JSON_MALFORMED', 'unexpected "x" after the closing \']\''],
    ['[1, 2]', 'JSON_MALFORMED', 'element 0: expected a detection object'],
    ['[{"a": nan}]', 'JSON_MALFORMED', 'element 0 (line 1): not a valid JSON object'],
    ['', 'JSON_MALFORMED', 'the file is empty'],
    ['"detections"', 'JSON_MALFORMED', 'expected a JSON array of detections'],
  ])('rejects %j', (text, code, message) => {
    const err = readError(writeTemp(dir, 'bad.json', text));
    expect(err.code).toBe(code);
    expect(err.message).toContain(message);
  });
});

describe('JSON Lines', () => {
  it('reads one object per line, skipping blank lines and CRLF endings', () => {
    const crlf = writeTemp(
      dir,
      'crlf.jsonl',
      `${basicRecords
        .slice(0, 3)
        .map((r) => JSON.stringify(r))
        .join('\r\n\r\n')}\r\n`,
    );
    for (const chunkBytes of [undefined, 7]) {
      const { records, lines, format } = readAll(crlf, chunkBytes);
      expect(format).toBe('json-lines');
      expect(records).toEqual(basicRecords.slice(0, 3));
      expect(lines).toEqual([1, 3, 5]);
    }
  });

  it('accepts a last line without a newline', () => {
    expect(readAll(writeTemp(dir, 'no-newline.jsonl', '{"a": 1}\n{"a": 2}')).records).toEqual([{ a: 1 }, { a: 2 }]);
  });

  it('gives the same evaluation as the JSON array', () => {
    const gt = synthetic.gt;
    expect(evaluateFiles(gt, jsonl).summary).toEqual(evaluateFiles(gt, basicDt).summary);
  });

  it('reports a half-written last line as truncated, with its line number', () => {
    const text = readFileSync(jsonl, 'utf8');
    const cut = writeTemp(dir, 'cut.jsonl', text.slice(0, text.length - 20));
    const err = readError(cut, 100);
    expect(err.code).toBe('JSON_TRUNCATED');
    expect(err.message).toContain(`${cut}: line ${basicRecords.length}: the file ends in the middle of this record`);
  });

  it('reports a broken line in the middle as malformed', () => {
    const err = readError(writeTemp(dir, 'broken.jsonl', '{"a": 1}\n{"a": 2\n{"a": 3}\n'));
    expect(err.code).toBe('JSON_MALFORMED');
    expect(err.message).toContain('line 2: not a valid JSON object');
  });

  it('rejects a line that is not an object', () => {
    const err = readError(writeTemp(dir, 'array-line.jsonl', '{"a": 1}\n[1, 2]\n'));
    expect(err.code).toBe('JSON_MALFORMED');
    expect(err.message).toContain('line 2: expected a JSON object per line');
  });
});

it('reports a missing file as unreadable', () => {
  const err = readError(join(dir, 'does-not-exist.json'));
  expect(err.code).toBe('FILE_UNREADABLE');
  expect(err.file).toBe(join(dir, 'does-not-exist.json'));
});
