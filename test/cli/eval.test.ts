/**
 * `cpwc-detect eval` as a real process (node dist/cli/index.js eval ...), built first.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { evaluateFiles, type EvaluationRun } from '../../src/eval/evaluate';
import { categoryTableText, metric } from '../../src/eval/format';
import { ensureDistBuilt, ROOT, tempDir, writeSyntheticCase, writeTemp } from '../helpers/eval';
import type { SyntheticCase } from '../eval/synthetic-coco';

const CLI = join(ROOT, 'dist/cli/index.js');

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, 'eval', ...args], { encoding: 'utf8', cwd: ROOT });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * A seeded synthetic case (crowd regions, unknown categories, ties, > 100 detections in one cell) and
 * what the library computes for it in this process: the CLI must print exactly that. That the
 * library equals pycocotools is differential.test.ts's business.
 */
function fixture(seed: number): { gt: string; dt: string; data: SyntheticCase; expected: EvaluationRun } {
  const files = writeSyntheticCase(tempDir(), { seed, images: 30, categories: 12 });
  return { ...files, expected: evaluateFiles(files.gt, files.dt) };
}

beforeAll(() => {
  ensureDistBuilt();
  expect(existsSync(join(ROOT, 'dist/cli/eval.js'))).toBe(true);
});

describe('results-file mode', () => {
  it('--json prints one object with the 12 stats and per-category AP keyed by category id', () => {
    const { gt, dt, data, expected } = fixture(2);
    expect(data.counts.detections_unknown_category).toBeGreaterThan(0);
    const out = cli(['--annotations', gt, '--detections', dt, '--json']);
    expect(out.status).toBe(0);
    expect(out.stdout.trim().split('\n')).toHaveLength(1);
    const result = JSON.parse(out.stdout) as { stats: number[]; per_category: Record<string, number> };
    expect(Object.keys(result).slice(0, 2)).toEqual(['stats', 'per_category']);
    expect(result.stats).toEqual(expected.summary.stats);
    const ids = data.gt.categories.map((c) => c.id).sort((a, b) => a - b);
    expect(Object.keys(result.per_category)).toEqual(ids.map(String));
    for (const c of expected.summary.per_category) expect(result.per_category[String(c.category_id)]).toBe(c.ap);
    expect(out.stderr).toContain(
      `note: ${data.counts.detections_unknown_category} detection(s) with a category_id that is not in the annotation file were ignored`,
    );
  });

  it('prints summarize() exactly, then a per-category table', () => {
    const { gt, dt, data, expected } = fixture(1);
    const out = cli(['-a', gt, '-d', dt]);
    expect(out.status).toBe(0);
    const lines = out.stdout.split('\n');
    expect(lines.slice(0, 12)).toEqual(expected.summary.summary_text);
    expect(lines[0]).toMatch(/^ Average Precision {2}\(AP\) @\[ IoU=0\.50:0\.95 \| area= {3}all \| maxDets=100 \] = 0\.\d{3}$/);
    expect(lines[12]).toBe('');
    expect(lines[14]).toMatch(/^id +category +AP +AP50 +AP75 +APs +APm +APl +AR100 +GT +dets$/);
    const first = expected.summary.per_category[0]!;
    expect(lines[15]).toMatch(
      new RegExp(`^ *${first.category_id} +category-${first.category_id} +${metric(first.ap).replace('.', '\\.')} `),
    );
    expect(lines.slice(14, 15 + data.gt.categories.length)).toEqual(categoryTableText(expected.summary));
  });

  it('reads JSON Lines results', () => {
    const { gt, dt, expected } = fixture(1);
    const records = JSON.parse(readFileSync(dt, 'utf8')) as unknown[];
    const jsonl = writeTemp(tempDir(), 'dt.jsonl', records.map((r) => JSON.stringify(r)).join('\n'));
    const out = cli(['--annotations', gt, '--detections', jsonl, '--json']);
    expect(out.status).toBe(0);
    expect((JSON.parse(out.stdout) as { stats: number[] }).stats).toEqual(expected.summary.stats);
  });

  it('--report writes summary.json, summary.md, per_category.csv and PR curves as SVG and PNG', async () => {
    const { gt, dt, data, expected } = fixture(2);
    const categories = data.gt.categories.length;
    const dir = join(tempDir(), 'report');
    const out = cli(['--annotations', gt, '--detections', dt, '--report', dir]);
    expect(out.status).toBe(0);
    const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as {
      stats: number[];
      per_category: unknown[];
      by_area: { area: string }[];
    };
    expect(summary.stats).toEqual(expected.summary.stats);
    expect(summary.per_category).toHaveLength(categories);
    expect(summary.by_area.map((a) => a.area)).toEqual(['all', 'small', 'medium', 'large']);
    const md = readFileSync(join(dir, 'summary.md'), 'utf8');
    expect(md).toContain(expected.summary.summary_text[0]);
    expect(md).toContain('## AP by object size');
    const scored = expected.summary.per_category.find((c) => c.ap > 0)!;
    expect(md).toContain(`| ${scored.category_id} | ${scored.name} | ${metric(scored.ap)} |`);
    const csv = readFileSync(join(dir, 'per_category.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe(
      'category_id,name,ap,ap50,ap75,ap_small,ap_medium,ap_large,' +
        'ar1,ar10,ar100,ar_small,ar_medium,ar_large,num_gt_non_crowd,num_detections',
    );
    expect(csv).toHaveLength(categories + 1);
    const svg = readFileSync(join(dir, 'pr_curves.svg'), 'utf8');
    expect(svg).not.toContain('<text');
    expect(svg.match(/<polyline /g)).toHaveLength(10);
    const png = await sharp(join(dir, 'pr_curves.png')).metadata();
    expect([png.format, png.width, png.height]).toEqual(['png', 1520, 1000]);
  });
});

describe('errors and usage', () => {
  it('exits 1 with the file, element and field for a detection on an unknown image', () => {
    const { gt } = fixture(1);
    const dt = writeTemp(tempDir(), 'dt.json', JSON.stringify([{ image_id: 123456789, category_id: 1, bbox: [0, 0, 1, 1], score: 1 }]));
    const out = cli(['--annotations', gt, '--detections', dt]);
    expect(out.status).toBe(1);
    expect(out.stdout).toBe('');
    expect(out.stderr).toContain(`${dt}: element 0 (line 1): image_id 123456789 is not an image of ${gt}`);
  });

  it('exits 1 for a truncated results file and says where it broke', () => {
    const { gt, dt } = fixture(1);
    const text = readFileSync(dt, 'utf8');
    const cut = writeTemp(tempDir(), 'dt.json', text.slice(0, Math.floor(text.length / 2)));
    const out = cli(['--annotations', gt, '--detections', cut]);
    expect(out.status).toBe(1);
    expect(out.stderr).toMatch(/element \d+ \(line 1\): the file ends in the middle of this detection/);
  });

  it('exits 2 on usage errors', () => {
    expect(cli(['--detections', 'x.json']).status).toBe(2);
    expect(cli(['--annotations', 'a.json']).stderr).toContain('give --detections RESULTS.json');
    expect(cli(['--bogus']).status).toBe(2);
  });

  it('--help documents both modes', () => {
    const out = cli(['--help']);
    expect(out.status).toBe(0);
    expect(out.stdout).toContain('--annotations GT.json --detections RESULTS.json');
    expect(out.stdout).toContain('--images DIR --out runs/NAME');
  });
});
