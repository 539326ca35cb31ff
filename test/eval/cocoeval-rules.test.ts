/**
 * One hand-made case per pycocotools rule (see docs/eval.md). Expected
 * values are worked out by hand in the comments; each case would give a different number if the
 * rule were implemented the obvious-but-wrong way. Values are compared to 12 digits because
 * pycocotools computes precision as tp / (tp + fp + eps): a perfect ranking scores 0.9999999999999998.
 */
import type { Box, ResultRecord } from '../helpers/eval';
import { evaluate } from '../helpers/eval';

const AP = 0;
const AP50 = 1;
const AP75 = 2;
const AP_SMALL = 3;
const AP_MEDIUM = 4;
const AP_LARGE = 5;
const AR1 = 6;
const AR10 = 7;
const AR100 = 8;
const AR_SMALL = 9;

function det(bbox: Box, score: number, image_id = 1, category_id = 1): ResultRecord {
  return { image_id, category_id, bbox, score };
}

describe('IoU and crowd regions', () => {
  const crowd = { image_id: 1, category_id: 1, bbox: [0, 0, 100, 100] as Box, iscrowd: 1 };
  const person = { image_id: 1, category_id: 1, bbox: [200, 200, 50, 50] as Box };

  it('matches any number of detections to a crowd region, which makes them ignored', () => {
    // Both detections inside the crowd have IoU = intersection / detection area = 1: ignored.
    // Only the true positive counts, so precision is 1 everywhere (a union-based IoU would make them FPs: AP 1/3).
    const run = evaluate({ annotations: [crowd, person] }, [
      det([10, 10, 20, 20], 0.9),
      det([50, 50, 30, 30], 0.8),
      det([200, 200, 50, 50], 0.7),
    ]);
    expect(run.summary.stats[AP]).toBeCloseTo(1, 12);
    expect(run.summary.stats[AR100]).toBeCloseTo(1, 12);
  });

  it('uses the detection area as the union for crowd regions', () => {
    // Half of this detection lies outside the crowd box: 2500 / 10000 = 0.25 < 0.5, a false positive
    // ranked first: precision [0, 1/2] -> envelope 1/2 at every recall.
    const run = evaluate({ annotations: [crowd, person] }, [det([50, 50, 100, 100], 0.95), det([200, 200, 50, 50], 0.7)]);
    expect(run.summary.stats[AP]).toBeCloseTo(0.5, 12);
  });

  it('does not count crowd regions as ground truth to find', () => {
    const run = evaluate({ annotations: [crowd] }, [det([10, 10, 20, 20], 0.9)]);
    expect(run.summary.stats).toEqual(new Array(12).fill(-1));
    expect(run.summary.per_category[0]!.num_gt_non_crowd).toBe(0);
  });

  it('matches at IoU equal to the threshold (>=), with no +1 in widths', () => {
    // [0,0,20,10] vs [0,0,10,10]: 100 / 200 = 0.5 exactly: a match at .50 only.
    const run = evaluate({ annotations: [{ image_id: 1, category_id: 1, bbox: [0, 0, 10, 10] }] }, [det([0, 0, 20, 10], 0.9)]);
    expect(run.summary.stats[AP50]).toBeCloseTo(1, 12);
    expect(run.summary.stats[AP75]).toBeCloseTo(0, 12);
    expect(run.summary.stats[AP]).toBeCloseTo(0.1, 12);
  });
});

describe('greedy matching', () => {
  it('gives a detection to the later GT when two GT have equal IoU', () => {
    // det1 [1,0,10,10] has IoU 90/110 with both g1 [0,0,10,10] and g2 [2,0,10,10] and takes g2 (the later one).
    // det2 [3,0,10,10]: IoU 90/110 with g2 (taken), 70/130 = 0.538 with g1.
    //   t = .50: both TP (AP 1); t = .55-.80: det2 is a FP (AP 51/101); t >= .85: no match (AP 0).
    // Had det1 taken g1, det2 would match g2 up to t = .80 and AP would be 0.7.
    const run = evaluate(
      {
        annotations: [
          { image_id: 1, category_id: 1, bbox: [0, 0, 10, 10] },
          { image_id: 1, category_id: 1, bbox: [2, 0, 10, 10] },
        ],
      },
      [det([1, 0, 10, 10], 0.9), det([3, 0, 10, 10], 0.8)],
    );
    expect(run.summary.stats[AP50]).toBeCloseTo(1, 12);
    expect(run.summary.stats[AP75]).toBeCloseTo(51 / 101, 12);
    expect(run.summary.stats[AP]).toBeCloseTo((1 + (6 * 51) / 101) / 10, 12);
  });

  it('lets a matched detection inherit the ignore flag of its GT', () => {
    // GT A has bbox 40x40 but area 500 (small): in the medium range it is ignored, and so is the
    // detection matched to it, although the detection's own area (1600) is medium.
    const run = evaluate(
      {
        annotations: [
          { image_id: 1, category_id: 1, bbox: [0, 0, 40, 40], area: 500 },
          { image_id: 1, category_id: 1, bbox: [100, 100, 50, 50] },
        ],
      },
      [det([0, 0, 40, 40], 0.9), det([100, 100, 50, 50], 0.8)],
    );
    expect(run.summary.stats[AP_MEDIUM]).toBeCloseTo(1, 12);
    expect(run.summary.stats[AP_SMALL]).toBeCloseTo(1, 12);
    expect(run.summary.stats[AP]).toBeCloseTo(1, 12);
  });

  it('ignores an unmatched detection whose w*h is outside the area range', () => {
    // A large false positive ranks first: AP(all) = 1/2, but in the medium range it is ignored.
    const run = evaluate({ annotations: [{ image_id: 1, category_id: 1, bbox: [0, 0, 50, 50] }] }, [
      det([200, 200, 100, 100], 0.9),
      det([0, 0, 50, 50], 0.8),
    ]);
    expect(run.summary.stats[AP]).toBeCloseTo(0.5, 12);
    expect(run.summary.stats[AP_MEDIUM]).toBeCloseTo(1, 12);
    expect(run.summary.stats[AP_LARGE]).toBe(-1);
  });

  it('copies the pycocotools quirk that a match to GT id 0 counts as unmatched', () => {
    const withId = (id: number) =>
      evaluate({ annotations: [{ id, image_id: 1, category_id: 1, bbox: [0, 0, 10, 10] }] }, [det([0, 0, 10, 10], 0.9)]);
    expect(withId(1).summary.stats[AP]).toBeCloseTo(1, 12);
    expect(withId(0).summary.stats[AP]).toBeCloseTo(0, 12);
  });
});

describe('area ranges', () => {
  it('includes both bounds: area 1024 is small and medium, 9216 is medium and large', () => {
    const run = evaluate(
      {
        annotations: [
          { image_id: 1, category_id: 1, bbox: [0, 0, 32, 32] },
          { image_id: 1, category_id: 1, bbox: [100, 100, 96, 96] },
        ],
      },
      [det([0, 0, 32, 32], 0.9), det([100, 100, 96, 96], 0.8)],
    );
    const { gtCount, dims } = run.evaluation;
    expect(Array.from(gtCount.subarray(0, dims.A))).toEqual([2, 1, 2, 1]);
    expect(run.summary.stats.slice(AP_SMALL, AP_LARGE + 1)).toEqual([1, 1, 1].map((v) => expect.closeTo(v, 12)));
  });

  it('uses the GT area field, not w*h', () => {
    // bbox 10x10 but area 5000: a medium object; no small GT, so AP small is -1.
    const run = evaluate({ annotations: [{ image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], area: 5000 }] }, [det([0, 0, 10, 10], 0.9)]);
    expect(run.summary.stats[AP_SMALL]).toBe(-1);
    expect(run.summary.stats[AR_SMALL]).toBe(-1);
    expect(run.summary.stats[AP_MEDIUM]).toBeCloseTo(1, 12);
  });

  it('keeps an unmatched detection of exactly 1024 px² in the small range', () => {
    // The 32x32 false positive ranks first; being inside [0, 1024] it is not ignored: AP small = 1/2.
    const run = evaluate({ annotations: [{ image_id: 1, category_id: 1, bbox: [0, 0, 10, 10] }] }, [
      det([300, 300, 32, 32], 0.9),
      det([0, 0, 10, 10], 0.8),
    ]);
    expect(run.summary.stats[AP_SMALL]).toBeCloseTo(0.5, 12);
  });
});

describe('maxDets', () => {
  it('cuts at 100 detections per image and category, not per image', () => {
    // Category 1: 100 higher-scored false positives push its true positive (101st) out.
    // Category 2: one detection, the lowest score in the image, survives (a per-image cut would drop it).
    const falsePositives = Array.from({ length: 100 }, (_, i) => det([200 + 3 * i, 200, 2, 2], 0.99 - i * 0.001));
    const run = evaluate(
      {
        categories: [1, 2],
        annotations: [
          { image_id: 1, category_id: 1, bbox: [0, 0, 10, 10] },
          { image_id: 1, category_id: 2, bbox: [0, 0, 10, 10] },
        ],
      },
      [...falsePositives, det([0, 0, 10, 10], 0.5), det([0, 0, 10, 10], 0.1, 1, 2)],
    );
    const [cat1, cat2] = run.summary.per_category;
    expect(cat1!.ap).toBeCloseTo(0, 12);
    expect(cat1!.ar100).toBeCloseTo(0, 12);
    expect(cat1!.num_detections).toBe(100);
    expect(cat2!.ap).toBeCloseTo(1, 12);
  });

  it('applies maxDets 1 and 10 per image and category for AR@1 and AR@10', () => {
    // Three objects of category 1 and one of category 2 in one image, all found.
    const boxes: Box[] = [
      [0, 0, 10, 10],
      [20, 0, 10, 10],
      [40, 0, 10, 10],
    ];
    const run = evaluate(
      {
        categories: [1, 2],
        annotations: [
          ...boxes.map((bbox) => ({ image_id: 1, category_id: 1, bbox })),
          { image_id: 1, category_id: 2, bbox: [0, 50, 10, 10] as Box },
        ],
      },
      [...boxes.map((bbox, i) => det(bbox, 0.9 - i / 10)), det([0, 50, 10, 10], 0.3, 1, 2)],
    );
    // AR@1: category 1 recalls 1/3, category 2 recalls 1 (its own single detection counts).
    expect(run.summary.stats[AR1]).toBeCloseTo((1 / 3 + 1) / 2, 12);
    expect(run.summary.stats[AR10]).toBeCloseTo(1, 12);
  });
});

describe('score ties', () => {
  const gt = { annotations: [{ image_id: 1, category_id: 1, bbox: [0, 0, 10, 10] as Box }] };

  it('keeps file order for equal scores within an image (stable sort)', () => {
    // FP first: precision [0, 1/2] -> AP 1/2; TP first: AP 1.
    expect(evaluate(gt, [det([100, 100, 10, 10], 0.5), det([0, 0, 10, 10], 0.5)]).summary.stats[AP]).toBeCloseTo(0.5, 12);
    expect(evaluate(gt, [det([0, 0, 10, 10], 0.5), det([100, 100, 10, 10], 0.5)]).summary.stats[AP]).toBeCloseTo(1, 12);
  });

  it('orders equal scores of different images by image id, whatever the file order', () => {
    // Image 1's false positive comes before image 2's true positive in accumulation.
    const spec = { images: [2, 1], annotations: [{ image_id: 2, category_id: 1, bbox: [0, 0, 10, 10] as Box }] };
    const run = evaluate(spec, [det([0, 0, 10, 10], 0.5, 2), det([0, 0, 10, 10], 0.5, 1)]);
    expect(run.summary.stats[AP]).toBeCloseTo(0.5, 12);
  });
});

describe('categories and images', () => {
  const oneObject = { categories: [1, 2], annotations: [{ image_id: 1, category_id: 1, bbox: [0, 0, 10, 10] as Box }] };

  it('leaves a category with detections but no GT at -1 and out of the means', () => {
    const base = evaluate(oneObject, [det([0, 0, 10, 10], 0.9)]);
    const extra = evaluate(oneObject, [det([0, 0, 10, 10], 0.9), det([50, 50, 10, 10], 0.95, 1, 2)]);
    expect(extra.summary.stats).toEqual(base.summary.stats);
    const cat2 = extra.summary.per_category[1]!;
    expect([cat2.ap, cat2.ap50, cat2.ap75, cat2.ar100]).toEqual([-1, -1, -1, -1]);
    expect(cat2.num_detections).toBe(1);
  });

  it('gives 0, not -1, to a category with GT but no detections', () => {
    const run = evaluate(
      { categories: [1, 2], annotations: [...oneObject.annotations, { image_id: 1, category_id: 2, bbox: [50, 50, 10, 10] }] },
      [det([0, 0, 10, 10], 0.9)],
    );
    expect(run.summary.per_category[1]!.ap).toBeCloseTo(0, 12);
    expect(run.summary.per_category[1]!.ar100).toBeCloseTo(0, 12);
    expect(run.summary.stats[AP]).toBeCloseTo(0.5, 12);
  });

  it('counts detections on images without GT as false positives', () => {
    const run = evaluate({ images: [1, 2], annotations: oneObject.annotations }, [det([0, 0, 10, 10], 0.5), det([0, 0, 10, 10], 0.9, 2)]);
    expect(run.summary.stats[AP]).toBeCloseTo(0.5, 12);
  });

  it('ignores detections whose category is not in the annotation file, and counts them', () => {
    const base = evaluate(oneObject, [det([0, 0, 10, 10], 0.5)]);
    const run = evaluate(oneObject, [det([0, 0, 10, 10], 0.5), det([0, 0, 10, 10], 0.9, 1, 99)]);
    expect(run.summary.stats).toEqual(base.summary.stats);
    expect(run.counts.detections_unknown_category).toBeCloseTo(1, 12);
  });

  it('reports -1 for every stat when there is no ground truth at all', () => {
    const run = evaluate({ annotations: [] }, [det([0, 0, 10, 10], 0.5)]);
    expect(run.summary.stats).toEqual(new Array(12).fill(-1));
    expect(run.summary.summary_text[0]).toBe(' Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = -1.000');
  });

  it('scores no detections as 0 where there is GT', () => {
    const run = evaluate(oneObject, []);
    expect(run.summary.stats.slice(0, 3)).toEqual([0, 0, 0]);
    expect(run.summary.stats[AP_MEDIUM]).toBe(-1);
  });
});
