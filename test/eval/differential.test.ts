/**
 * Our COCOeval against the live Python references on seeded synthetic datasets (synthetic-coco.ts):
 * pycocotools 2.0.11 and faster-coco-eval 1.8.0, run by tools/eval/coco_reference.py with
 * pythonExecutable() ($CPWC_PYTHON, else .venv/bin/python; the packages of scripts/constraints.txt).
 *
 * pycocotools: equal bit for bit in the whole precision[T,R,K,A,M] and recall[T,K,A,M] arrays,
 * every per-category metric and the AP per IoU threshold. The 12 stats agree to 1e-12: they are
 * numpy means of up to K*1010 values, and numpy 2.4 sums a contiguous array pairwise in one piece
 * where numpy 1.24 (whose results we reproduce, see numeric.ts and fixtures.test.ts) sums blocks of
 * 8192, so a mean over more than 8192 values can differ in the last bit.
 * faster-coco-eval: the same arrays apart from one documented difference (see ONE_MINUS below);
 * every mean agrees to 1e-12. How many stats are bit-identical is printed for both.
 *
 * The seeds are fixed; CPWC_EVAL_DIFF_SEED=N shifts them all by N for a wider search by hand.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { evaluateFiles, type EvaluationRun } from '../../src/eval/evaluate';
import { DEFAULT_PARAMS } from '../../src/eval/params';
import { pythonExecutable } from '../helpers/python';
import { CocoEvalError } from '../../src/eval/errors';
import { ROOT, tempDir, writeSyntheticCase, writeTemp } from '../helpers/eval';
import type { SyntheticCounts, SyntheticOptions } from './synthetic-coco';

const LIBRARIES = ['pycocotools', 'faster-coco-eval'] as const;
type Library = (typeof LIBRARIES)[number];

const VERSIONS: Record<Library, string> = { pycocotools: '2.0.11', 'faster-coco-eval': '1.8.0' };

type CategoryNumbers = Record<string, number> & { category_id: number };

interface ReferenceResult {
  case: string;
  library: Library;
  /** Set instead of the numbers when the library raised on this input ("KeyError: 'iscrowd'"). */
  error?: string;
  stats: number[];
  ap_per_iou_threshold: number[];
  per_category: CategoryNumbers[];
  shape: number[];
  params: { iouThrs: number[]; recThrs: number[]; maxDets: number[]; areaRng: number[][]; areaRngLbl: string[] };
}

interface ReferenceReport {
  versions: Record<string, string>;
  results: ReferenceResult[];
}

const SHIFT = Number(process.env.CPWC_EVAL_DIFF_SEED ?? '0');
if (!Number.isInteger(SHIFT)) throw new Error(`CPWC_EVAL_DIFF_SEED must be an integer, got ${process.env.CPWC_EVAL_DIFF_SEED}`);

/** 36 small cases of varied shape, and 4 larger ones whose stats average more than 8192 values. */
const CASES: SyntheticOptions[] = [
  ...Array.from({ length: 36 }, (_, i) => ({
    seed: 1000 + i + SHIFT,
    images: 4 + ((i * 7) % 29),
    categories: 2 + ((i * 5) % 11),
    maxObjectsPerImage: 1 + ((i * 3) % 12),
  })),
  ...Array.from({ length: 4 }, (_, i) => ({ seed: 2000 + i + SHIFT, images: 120, categories: 15 + 5 * i })),
];

function runReferences(dirs: readonly string[]): ReferenceReport {
  const python = pythonExecutable();
  const script = join(ROOT, 'tools/eval/coco_reference.py');
  const args = [script, '--arrays', ...LIBRARIES.flatMap((l) => ['--library', l]), ...dirs];
  const result = spawnSync(python, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (result.error !== undefined || result.status !== 0) {
    throw new Error(
      `the Python references did not run (${python} ${script}): ${result.error?.message ?? `exit ${result.status}`}\n${result.stderr}\n` +
        'Create the venv with pycocotools and faster-coco-eval (pip install -c scripts/constraints.txt pycocotools faster-coco-eval) ' +
        'or point CPWC_PYTHON at a Python that has them.',
    );
  }
  return JSON.parse(result.stdout) as ReferenceReport;
}

/** A float64 little-endian file as written by coco_reference.py --arrays (copied: no alignment assumption). */
function readF64(file: string): Float64Array {
  const bytes = readFileSync(file);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Float64Array.from({ length: bytes.byteLength / 8 }, (_, i) => view.getFloat64(8 * i, true));
}

/** The first index where two arrays differ (Object.is: -0 and NaN count), or -1. */
function firstDifference(a: Float64Array, b: Float64Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

function ourCategoryNumbers(run: EvaluationRun): CategoryNumbers[] {
  return run.summary.per_category.map((c) => ({
    category_id: c.category_id,
    ap: c.ap,
    ap50: c.ap50,
    ap75: c.ap75,
    ap_small: c.ap_small,
    ap_medium: c.ap_medium,
    ap_large: c.ap_large,
    ar1: c.ar1,
    ar10: c.ar10,
    ar100: c.ar100,
    ar_small: c.ar_small,
    ar_medium: c.ar_medium,
    ar_large: c.ar_large,
  }));
}

const root = tempDir('cpwc-eval-diff-');
const files = CASES.map((options) => writeSyntheticCase(join(root, `seed-${options.seed}`), options));
let report: ReferenceReport;
const ours = new Map<string, EvaluationRun>();
/** What the comparisons saw, printed at the end: bit-identical stats and the largest differences. */
const seen = Object.fromEntries(LIBRARIES.map((l) => [l, { exactStats: 0, stats: 0, perCategory: 0, apPerIou: 0 }])) as Record<
  Library,
  { exactStats: number; stats: number; perCategory: number; apPerIou: number }
>;

function largestDifference(ours: readonly number[], theirs: readonly number[]): number {
  return ours.reduce((m, v, i) => Math.max(m, Math.abs(v - theirs[i]!)), 0);
}

/**
 * Inputs on which the references part ways: 'equal' means the library scores it and we equal it
 * (as for the synthetic cases); a RegExp is the error the library raises; 'scores' means it scores
 * it and we refuse the file (the `ours` error code).
 */
interface Probe {
  name: string;
  gt: Record<string, unknown>;
  dt: Record<string, unknown>[];
  references: Record<Library, 'equal' | 'scores' | RegExp>;
  ours?: string;
}

const PROBE_IMAGES = [1, 2].map((id) => ({ id, width: 100, height: 100, file_name: `${id}.jpg` }));
const PROBE_GT = [
  { id: 1, image_id: 1, category_id: 1, bbox: [10, 10, 20, 20], area: 400, iscrowd: 0 },
  { id: 2, image_id: 2, category_id: 1, bbox: [10, 10, 50, 50], area: 2500, iscrowd: 0 },
];
const PROBE_DT = [
  { image_id: 1, category_id: 1, bbox: [10, 10, 20, 20], score: 0.9 },
  { image_id: 2, category_id: 1, bbox: [12, 10, 50, 50], score: 0.8 },
  { image_id: 2, category_id: 1, bbox: [60, 60, 30, 30], score: 0.85 },
];
const probeGt = (annotations: Record<string, unknown>[]): Record<string, unknown> => ({
  images: PROBE_IMAGES,
  categories: [{ id: 1, name: 'a' }],
  annotations,
});

const PROBES: Probe[] = [
  { name: 'an empty results list', gt: probeGt(PROBE_GT), dt: [], references: { pycocotools: /^IndexError/, 'faster-coco-eval': 'equal' } },
  {
    name: 'GT annotations without iscrowd',
    gt: probeGt(PROBE_GT.map(({ iscrowd: _, ...a }) => a)),
    dt: PROBE_DT,
    references: { pycocotools: /^KeyError: 'iscrowd'/, 'faster-coco-eval': 'equal' },
  },
  {
    name: "a GT 'ignore' field (iscrowd overrides it)",
    gt: probeGt([
      { ...PROBE_GT[0]!, ignore: 1 },
      { ...PROBE_GT[1]!, ignore: 0, iscrowd: 1 },
    ]),
    dt: PROBE_DT,
    references: { pycocotools: 'equal', 'faster-coco-eval': 'equal' },
  },
  {
    name: "a detection 'area' field (w*h overrides it)",
    gt: probeGt(PROBE_GT),
    dt: PROBE_DT.map((d) => ({ ...d, area: 5000 })),
    references: { pycocotools: 'equal', 'faster-coco-eval': 'equal' },
  },
  {
    name: 'GT annotations without area',
    gt: probeGt(PROBE_GT.map(({ area: _, ...a }) => a)),
    dt: PROBE_DT,
    references: { pycocotools: /^KeyError: 'area'/, 'faster-coco-eval': 'scores' },
    ours: 'FIELD_MISSING',
  },
];

const probeDirs = PROBES.map((_, i) => join(root, `probe-${i}`));

beforeAll(() => {
  PROBES.forEach((probe, i) => {
    const dir = probeDirs[i]!;
    mkdirSync(dir);
    writeTemp(dir, 'gt.json', JSON.stringify(probe.gt));
    writeTemp(dir, 'dt.json', JSON.stringify(probe.dt));
  });
  report = runReferences([...files.map((f) => join(f.gt, '..')), ...probeDirs]);
  for (const f of files) ours.set(join(f.gt, '..'), evaluateFiles(f.gt, f.dt));
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true }); // about 65 MB of arrays
  const total = files.length * 12;
  for (const library of LIBRARIES) {
    const x = seen[library];
    process.stdout.write(
      `differential vs ${library}: ${files.length} cases; stats bit-identical ${x.exactStats}/${total}; largest difference: ` +
        `stats ${x.stats}, per-category ${x.perCategory}, AP per IoU threshold ${x.apPerIou}\n`,
    );
  }
});

it('runs the pinned reference versions', () => {
  expect(report.versions).toMatchObject(VERSIONS);
  expect(report.results).toHaveLength((files.length + PROBES.length) * LIBRARIES.length);
});

it('covers every edge case it claims to', () => {
  const sum = (key: keyof SyntheticCounts): number => files.reduce((n, f) => n + f.data.counts[key], 0);
  for (const key of [
    'images_empty',
    'images_without_gt',
    'gt_crowd',
    'gt_area_1024',
    'gt_area_9216',
    'gt_duplicate_boxes',
    'detections_unknown_category',
    'detections_in_category_without_gt',
    'detections_area_boundary',
    'detections_at_iou_threshold',
  ] as const) {
    expect([key, sum(key) > 0]).toEqual([key, true]);
  }
  // Every case has one (image, category) with more than 100 detections, and some cases round scores.
  for (const f of files) expect(f.data.counts.detections_in_crowded_cell).toBeGreaterThan(100);
  expect(files.filter((f) => f.data.counts.score_quantum >= 0.05).length).toBeGreaterThan(3);
  // Exact score ties across detections of one case (the stable sort decides them).
  const tied = files.filter((f) => new Set(f.data.dt.map((d) => d.score)).size < f.data.dt.length);
  expect(tied).toHaveLength(files.length);
});

/**
 * faster-coco-eval's accumulate() (detectron2's C++) computes precision as tp / (tp + fp), without
 * pycocotools' + np.spacing(1): where the ranking so far is one true positive, it gives 1 where
 * pycocotools (and we) give 1 / (1 + eps). That is the only difference in its arrays.
 */
const ONE_MINUS = 1 / (1 + 2.220446049250313e-16);

function fasterCocoEvalPrecision(ours: Float64Array): Float64Array {
  return ours.map((v) => (v === ONE_MINUS ? 1 : v));
}

/** Per-value comparison within `tolerance`, reporting the first value outside it. */
function expectClose(what: string, ours: readonly number[], theirs: readonly number[], tolerance: number): void {
  expect(ours).toHaveLength(theirs.length);
  const bad = ours.findIndex((v, i) => !(Math.abs(v - theirs[i]!) <= tolerance));
  expect(bad < 0 ? 'all within tolerance' : `${what}[${bad}]: ours ${ours[bad]}, reference ${theirs[bad]}`).toBe('all within tolerance');
}

const categoryValues = (rows: readonly CategoryNumbers[]): number[] =>
  rows.flatMap((r) =>
    Object.keys(r)
      .sort()
      .map((k) => r[k]!),
  );

function resultFor(library: Library, dir: string): ReferenceResult {
  const r = report.results.find((x) => x.case === dir && x.library === library);
  if (r === undefined) throw new Error(`no ${library} result for ${dir}`);
  return r;
}

/** Every comparison, for one library on one case; returns the stats compared. */
function expectEqualToReference(library: Library, dir: string, run: EvaluationRun): ReferenceResult {
  const ref = resultFor(library, dir);
  expect(ref.error).toBeUndefined();
  const { T, R, K, A, M } = run.evaluation.dims;
  expect(ref.shape).toEqual([T, R, K, A, M]);

  const precision = readF64(join(dir, `${library}.precision.f64`));
  const recall = readF64(join(dir, `${library}.recall.f64`));
  const ourPrecision = library === 'pycocotools' ? run.evaluation.precision : fasterCocoEvalPrecision(run.evaluation.precision);
  expect({ precision: firstDifference(ourPrecision, precision), recall: firstDifference(run.evaluation.recall, recall) }).toEqual({
    precision: -1,
    recall: -1,
  });

  const categories = ourCategoryNumbers(run);
  expect(categories.map((c) => c.category_id)).toEqual(ref.per_category.map((c) => c.category_id));
  if (library === 'pycocotools') {
    expect(categories).toEqual(ref.per_category);
    expect(run.summary.ap_per_iou_threshold).toEqual(ref.ap_per_iou_threshold);
  } else {
    expectClose('per-category metric', categoryValues(categories), categoryValues(ref.per_category), 1e-12);
    expectClose('AP per IoU threshold', run.summary.ap_per_iou_threshold, ref.ap_per_iou_threshold, 1e-12);
  }
  expectClose('stats', run.summary.stats, ref.stats, 1e-12);
  return ref;
}

describe.each(LIBRARIES)('equals %s', (library) => {
  it('uses the same parameters (linspace thresholds, area ranges, maxDets)', () => {
    const { params } = resultFor(library, join(files[0]!.gt, '..'));
    expect(Array.from(DEFAULT_PARAMS.iouThrs)).toEqual(params.iouThrs);
    expect(Array.from(DEFAULT_PARAMS.recThrs)).toEqual(params.recThrs);
    expect(DEFAULT_PARAMS.maxDets).toEqual(params.maxDets);
    expect(DEFAULT_PARAMS.areaRanges.map((r) => [...r])).toEqual(params.areaRng);
    expect(DEFAULT_PARAMS.areaLabels).toEqual(params.areaRngLbl);
  });

  it.each(CASES.map((c) => [c.seed, c.images, c.categories]))('seed %d (%d images, %d categories)', (seed) => {
    const dir = join(root, `seed-${seed}`);
    const run = ours.get(dir)!;
    const ref = expectEqualToReference(library, dir, run);
    const x = seen[library];
    x.exactStats += run.summary.stats.filter((v, i) => v === ref.stats[i]).length;
    x.stats = Math.max(x.stats, largestDifference(run.summary.stats, ref.stats));
    const categories = categoryValues(ourCategoryNumbers(run));
    x.perCategory = Math.max(x.perCategory, largestDifference(categories, categoryValues(ref.per_category)));
    x.apPerIou = Math.max(x.apPerIou, largestDifference(run.summary.ap_per_iou_threshold, ref.ap_per_iou_threshold));
  });
});

describe.each(PROBES.map((probe, i) => [probe.name, probe, i] as const))('on %s', (_, probe, i) => {
  const dir = (): string => probeDirs[i]!;
  const evaluateProbe = (): EvaluationRun => evaluateFiles(join(dir(), 'gt.json'), join(dir(), 'dt.json'));

  it(probe.ours === undefined ? 'we score it' : `we refuse it with ${probe.ours}`, () => {
    if (probe.ours === undefined) {
      expect(evaluateProbe().summary.stats).toHaveLength(12);
    } else {
      let error: unknown;
      try {
        evaluateProbe();
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(CocoEvalError);
      expect((error as CocoEvalError).code).toBe(probe.ours);
    }
  });

  it.each(LIBRARIES)('%s', (library) => {
    const expected = probe.references[library];
    if (expected === 'equal') expectEqualToReference(library, dir(), evaluateProbe());
    else if (expected === 'scores') expect(resultFor(library, dir()).stats).toHaveLength(12);
    else expect(resultFor(library, dir()).error).toMatch(expected);
  });
});
