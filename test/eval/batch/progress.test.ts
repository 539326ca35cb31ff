import { Progress } from '../../../src/eval/batch/progress';

function recorder(isTTY: boolean): { stream: { write(text: string): void; isTTY: boolean }; output: () => string } {
  let text = '';
  return {
    stream: {
      isTTY,
      write: (chunk: string) => {
        text += chunk;
      },
    },
    output: () => text,
  };
}

describe('Progress', () => {
  it('describes done/total, rate and ETA from this session only', () => {
    let now = 0;
    const { stream } = recorder(false);
    const progress = new Progress(100, 20, stream, () => now);
    now = 10_000; // 10 s for 20 more images: 2 images/s, 60 left -> 30 s
    expect(progress.describe(40, 3)).toBe('40/100 images (40%)  2.00 images/s  ETA 0:30  skipped 3');
  });

  it('writes plain lines for the first image and at each tenth when stderr is not a terminal', () => {
    let now = 0;
    const { stream, output } = recorder(false);
    const progress = new Progress(20, 0, stream, () => now);
    for (let done = 1; done <= 20; done++) {
      now += 1000;
      progress.update(done, 0);
    }
    progress.finish(20, 0);
    const lines = output().trim().split('\n');
    expect(lines.map((l) => l.split(' ')[1])).toEqual([
      '1/20',
      '2/20',
      '4/20',
      '6/20',
      '8/20',
      '10/20',
      '12/20',
      '14/20',
      '16/20',
      '18/20',
      '20/20',
    ]);
    expect(lines[10]).toBe('eval: 20/20 images (100%)  1.00 images/s  ETA 0:00');
    expect(output()).not.toContain('\r');
  });

  it('redraws one line in place on a terminal', () => {
    let now = 0;
    const { stream, output } = recorder(true);
    const progress = new Progress(4, 0, stream, () => now);
    for (let done = 1; done <= 4; done++) {
      now += 500;
      progress.update(done, 0);
    }
    progress.finish(4, 0);
    expect(output().split('\n')).toEqual([expect.stringContaining('\r\x1b[Keval [########################] 4/4 images (100%)'), '']);
    expect(output().split('\r\x1b[K').length - 1).toBe(5);
  });
});
