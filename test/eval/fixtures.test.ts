/**
 * The golden pycocotools outputs in ../shared/fixtures/coco-eval: every number must be equal.
 * The contract is 1e-9; we are in fact bit-identical (numpy 1.24's blocked pairwise mean is
 * reproduced), so the comparison is exact equality. The goldens are not part of the repository:
 * where they are absent these tests are skipped, and differential.test.ts (live pycocotools on
 * synthetic data) is the check that always runs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { evaluateFiles, type EvaluationRun } from '../../src/eval/evaluate';
import { DEFAULT_PARAMS } from '../../src/eval/params';
import { SHARED_FIXTURES, SHARED_FIXTURES_PRESENT } from '../helpers/eval';

interface Expected {
  stats: number[];
  ap_per_iou_threshold: number[];
  per_category: { category_id: number; ap: number; ap50: number; ap75: number; ar100: number; num_gt_non_crowd: number }[];
  summary_text: string[];
  params: { iouThrs: number[]; recThrs: number[]; maxDets: number[]; areaRng: number[][]; areaRngLbl: string[]; catIds: number[] };
}

const CASES = ['case-basic', 'case-crowd', 'case-large'];

function expected(name: string): Expected {
  return JSON.parse(readFileSync(join(SHARED_FIXTURES, name, 'expected.json'), 'utf8')) as Expected;
}

const describeShared = SHARED_FIXTURES_PRESENT ? describe : describe.skip;

describeShared.each(CASES)('%s matches pycocotools (golden files in ../shared)', (name) => {
  let want: Expected;
  let run: EvaluationRun;
  beforeAll(() => {
    want = expected(name);
    run = evaluateFiles(join(SHARED_FIXTURES, name, 'gt.json'), join(SHARED_FIXTURES, name, 'dt.json'));
  });

  it('has the 12 stats', () => {
    expect(run.summary.stats).toHaveLength(12);
    run.summary.stats.forEach((value, i) => {
      expect(Math.abs(value - want.stats[i]!)).toBeLessThanOrEqual(1e-9);
      expect(value).toBe(want.stats[i]);
    });
  });

  it('has AP per IoU threshold', () => {
    expect(run.summary.ap_per_iou_threshold).toEqual(want.ap_per_iou_threshold);
  });

  it('has per-category AP, AP50, AP75, AR100 and GT counts', () => {
    const byId = new Map(run.summary.per_category.map((c) => [c.category_id, c]));
    expect(run.summary.per_category.map((c) => c.category_id)).toEqual(want.params.catIds);
    for (const w of want.per_category) {
      const got = byId.get(w.category_id)!;
      expect({ id: w.category_id, ap: got.ap, ap50: got.ap50, ap75: got.ap75, ar100: got.ar100, gt: got.num_gt_non_crowd }).toEqual({
        id: w.category_id,
        ap: w.ap,
        ap50: w.ap50,
        ap75: w.ap75,
        ar100: w.ar100,
        gt: w.num_gt_non_crowd,
      });
    }
  });

  it('prints summarize() exactly', () => {
    expect(run.summary.summary_text).toEqual(want.summary_text);
  });

  it('uses the same parameters (linspace values, area ranges, maxDets)', () => {
    expect(Array.from(DEFAULT_PARAMS.iouThrs)).toEqual(want.params.iouThrs);
    expect(Array.from(DEFAULT_PARAMS.recThrs)).toEqual(want.params.recThrs);
    expect(DEFAULT_PARAMS.maxDets).toEqual(want.params.maxDets);
    expect(DEFAULT_PARAMS.areaRanges.map((r) => [...r])).toEqual(want.params.areaRng);
    expect(DEFAULT_PARAMS.areaLabels).toEqual(want.params.areaRngLbl);
  });
});
