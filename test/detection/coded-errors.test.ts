/**
 * Every error thrown in src/detection, src/cli, src/eval, src/common and src/server is coded.
 * A plain Error may stay only where it cannot be caused by input, said in the comment line above
 * it ("invariant", or "caught below" when a try block turns it into a coded error).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BoxCoder } from '../../src/detection/box-coder';
import { DetectError } from '../../src/detection/errors';
import { RoiHeadsPostprocessor } from '../../src/detection/roi-heads';

const SRC = path.join(__dirname, '..', '..', 'src');
const DIRS = ['detection', 'cli', 'eval', 'common', 'server'];

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return files(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

describe('coded errors', () => {
  it('no plain Error, RangeError or TypeError is thrown without a reason it cannot come from input', () => {
    const offenders: string[] = [];
    for (const dir of DIRS) {
      for (const file of files(path.join(SRC, dir))) {
        const relative = path.relative(SRC, file);
        const lines = fs.readFileSync(file, 'utf8').split('\n');
        lines.forEach((line, i) => {
          if (!/throw new (Error|RangeError|TypeError)\(/.test(line)) return;
          const above = lines[i - 1] ?? '';
          const justified = /^\s*\/\/.*(invariant|caught below)/.test(above) || /\/\/.*(invariant|caught below)/.test(line);
          if (!justified) offenders.push(`${relative}:${i + 1}: ${line.trim()}`);
        });
      }
    }
    expect(offenders).toEqual([]);
  });

  it('graph outputs of the wrong size are MODEL_INVALID, not a RangeError', () => {
    expect(() => new BoxCoder([1, 1, 1, 1]).decode(new Float32Array(6), new Float32Array(4))).toThrow(DetectError);
    const heads = new RoiHeadsPostprocessor({
      numClasses: 3,
      scoreThresh: 0.05,
      nmsThresh: 0.5,
      detectionsPerImg: 100,
      minSize: 0.01,
      boxCoderWeights: [10, 10, 5, 5],
      bboxXformClip: Math.log(1000 / 16),
    });
    const proposals = Float32Array.of(0, 0, 10, 10);
    let error: unknown;
    try {
      heads.postprocess(new Float32Array(2), new Float32Array(12), proposals, { width: 20, height: 20 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DetectError);
    expect(error).toMatchObject({
      code: 'MODEL_INVALID',
      message: expect.stringContaining('box head: expected 1x3 class logits') as string,
    });
  });
});
