/** `cpwc-detect detect`, run in-process through its exported run(argv). */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { run } from '../../src/cli/detect';
import { fixtureModel } from '../helpers/fixture-models';
import { IMAGES_DIR } from '../detection/images';

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[]): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    return { code: await run(args), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

interface JsonOutcome {
  file: string;
  width?: number;
  height?: number;
  detections?: Array<{ label: string; class_id: number; score: number; box: Record<'xmin' | 'ymin' | 'xmax' | 'ymax', number> }>;
  error?: { code: string; message: string };
}

const image = (name: string): string => path.join(IMAGES_DIR, name);

describe('cpwc-detect detect', () => {
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cpwc-cli-'));
  afterAll(() => fs.rmSync(outDir, { recursive: true, force: true }));

  it('--json prints one array in argument order; an unreadable image is an entry with its error, exit 1', async () => {
    const notImage = path.join(outDir, 'notes.txt');
    fs.writeFileSync(notImage, 'not an image');
    const result = await cli([
      '--model',
      fixtureModel('tiny-fpn'),
      '--threads',
      '1',
      '--json',
      image('portrait.jpg'),
      notImage,
      path.join(outDir, 'missing.jpg'),
      image('tiny.png'),
    ]);
    expect(result.code).toBe(1);
    const parsed = JSON.parse(result.stdout) as JsonOutcome[];
    expect(parsed.map((o) => o.file)).toEqual([image('portrait.jpg'), notImage, path.join(outDir, 'missing.jpg'), image('tiny.png')]);
    expect(parsed[0]).toMatchObject({ width: 384, height: 512 });
    expect(parsed[0].detections?.[0]).toEqual({
      label: expect.any(String),
      class_id: expect.any(Number),
      score: expect.any(Number),
      box: { xmin: expect.any(Number), ymin: expect.any(Number), xmax: expect.any(Number), ymax: expect.any(Number) },
    });
    expect(parsed[1].error?.code).toBe('IMAGE_UNSUPPORTED_FORMAT');
    expect(parsed[2].error?.code).toBe('FILE_UNREADABLE');
    expect(parsed[3]).toMatchObject({ width: 40, height: 30 });
    expect(result.stderr).toMatch(/notes\.txt: IMAGE_UNSUPPORTED_FORMAT/);
  });

  it('prints a table by default, honours --max-detections and --score-threshold, and --render writes each image', async () => {
    const renderDir = path.join(outDir, 'rendered');
    const result = await cli([
      '--model',
      fixtureModel('tiny-fpn'),
      '--threads',
      '1',
      '--max-detections',
      '2',
      '--score-threshold',
      '0.1',
      '--render',
      renderDir,
      image('landscape.jpg'),
      image('hubble.gif'),
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/landscape\.jpg {2}600x400 {2}[0-2] detections?/);
    expect(result.stdout).toMatch(/label +score +xmin +ymin +xmax +ymax/);
    const rows = result.stdout.split('\n').filter((line) => /^ {2}\S+ +\d\.\d{3}/.test(line));
    expect(rows.length).toBeLessThanOrEqual(4);
    rows.forEach((row) => expect(Number(row.trim().split(/ +/)[1])).toBeGreaterThanOrEqual(0.1));
    expect(await sharp(path.join(renderDir, 'landscape.png')).metadata()).toMatchObject({ width: 600, height: 400, format: 'png' });
    expect(await sharp(path.join(renderDir, 'hubble.png')).metadata()).toMatchObject({ width: 320, height: 279 });
  });

  it('--classes takes labels and class ids alike', async () => {
    const base = ['--model', fixtureModel('tiny-fpn'), '--threads', '1', '--json', '--score-threshold', '0', image('landscape.jpg')];
    const all = (JSON.parse((await cli(base)).stdout) as JsonOutcome[])[0]?.detections ?? [];
    const first = all[0];
    if (first === undefined) throw new Error('the fixture model found nothing at score threshold 0');
    const byLabel = JSON.parse((await cli([...base, '--classes', first.label])).stdout) as JsonOutcome[];
    const byId = JSON.parse((await cli([...base, '--classes', String(first.class_id)])).stdout) as JsonOutcome[];
    expect(byLabel[0]?.detections?.length).toBeGreaterThan(0);
    expect(byLabel[0]?.detections?.every((d) => d.class_id === first.class_id)).toBe(true);
    expect(byId[0]?.detections).toEqual(byLabel[0]?.detections);
  });

  it('--help prints usage and exits 0; bad usage exits 2 with a message', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: cpwc-detect detect IMAGE/);
    expect((await cli([])).code).toBe(2);
    const bad = await cli(['--score-threshold', 'high', image('tiny.png')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--score-threshold must be a number in \[0, 1\], got 'high'/);
    expect((await cli(['--no-such-flag', image('tiny.png')])).code).toBe(2);
  });

  it('a model directory that cannot be loaded is an error message and exit 1', async () => {
    const result = await cli(['--model', path.join(outDir, 'no-model'), image('tiny.png')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cannot load the model: .*model\.json: not found/);
  });
});
