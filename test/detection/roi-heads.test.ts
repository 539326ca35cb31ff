import { DEFAULT_BBOX_XFORM_CLIP } from '../../src/detection/box-coder';
import { assignLevels, mapLevels, RoiHeadsPostprocessor, softmaxRows, type LevelMapperConfig } from '../../src/detection/roi-heads';
import { resizeBoxes } from '../../src/detection/transform';
import { hashArray, hashBoxes, readTorchvisionFixture } from './hash-values';

interface LevelMapperFixture {
  k_min: number;
  k_max: number;
  canonical_scale: number;
  canonical_level: number;
  eps: number;
  boxes: number[];
  levels: number[];
}

interface RoiHeadsFixture {
  count: number;
  num_classes: number;
  resized: [number, number];
  original: [number, number];
  score_thresh: number;
  nms_thresh: number;
  detections_per_img: number;
  min_size: number;
  box_coder_weights: [number, number, number, number];
  proposals_salt: number;
  proposals_extent: number;
  proposals_max_side: number;
  class_logits_salt: number;
  class_logits_range: [number, number];
  box_regression_salt: number;
  box_regression_range: [number, number];
  boxes: number[];
  scores: number[];
  labels: number[];
  boxes_in_original: number[];
}

const mapperFixture = readTorchvisionFixture<LevelMapperFixture>('level-mapper.json');
const mapper: LevelMapperConfig = {
  kMin: mapperFixture.k_min,
  kMax: mapperFixture.k_max,
  canonicalScale: mapperFixture.canonical_scale,
  canonicalLevel: mapperFixture.canonical_level,
  eps: mapperFixture.eps,
};

describe('mapLevels (LevelMapper)', () => {
  it('equals torchvision LevelMapper, including sides at level boundaries and zero-area boxes', () => {
    expect(Array.from(mapLevels(Float32Array.from(mapperFixture.boxes), mapper))).toEqual(mapperFixture.levels);
  });
});

describe('assignLevels', () => {
  it('splits proposals per level in proposal order and maps graph rows back to proposals', () => {
    const proposals = new Float32Array([0, 0, 500, 500, 0, 0, 10, 10, 0, 0, 224, 224, 5, 5, 15, 15]);
    const { rois, proposalOfRow } = assignLevels(proposals, 4, mapper);
    expect(rois.map((r) => Array.from(r))).toEqual([[0, 0, 10, 10, 5, 5, 15, 15], [], [0, 0, 224, 224], [0, 0, 500, 500]]);
    expect(Array.from(proposalOfRow)).toEqual([1, 3, 2, 0]);
  });

  it('puts everything on the single level of a one-feature-map head', () => {
    const { rois, proposalOfRow } = assignLevels(new Float32Array([0, 0, 500, 500, 0, 0, 10, 10]), 1, null);
    expect(rois.map((r) => r.length)).toEqual([8]);
    expect(Array.from(proposalOfRow)).toEqual([0, 1]);
  });

  it('refuses a level mapper that does not cover the box head levels with MODEL_INVALID', () => {
    expect(() => assignLevels(new Float32Array([0, 0, 10, 10]), 3, mapper)).toThrow(
      expect.objectContaining({ code: 'MODEL_INVALID', message: 'the level mapper covers 4 levels, the box head has 3' }),
    );
  });
});

describe('RoiHeadsPostprocessor.postprocess (postprocess_detections) and resizeBoxes (transform.postprocess)', () => {
  const f = readTorchvisionFixture<RoiHeadsFixture>('roi-heads.json');
  const proposals = hashBoxes(f.count, f.proposals_salt, f.proposals_extent, f.proposals_max_side);
  const classLogits = hashArray(f.count * f.num_classes, f.class_logits_salt, ...f.class_logits_range);
  const boxRegression = hashArray(f.count * f.num_classes * 4, f.box_regression_salt, ...f.box_regression_range);
  const postprocessor = new RoiHeadsPostprocessor({
    numClasses: f.num_classes,
    scoreThresh: f.score_thresh,
    nmsThresh: f.nms_thresh,
    detectionsPerImg: f.detections_per_img,
    minSize: f.min_size,
    boxCoderWeights: f.box_coder_weights,
    bboxXformClip: DEFAULT_BBOX_XFORM_CLIP,
  });
  const resized = { width: f.resized[0], height: f.resized[1] };

  it('equals torchvision bit for bit: boxes, scores, labels, then boxes mapped to the original image', () => {
    const detections = postprocessor.postprocess(classLogits, boxRegression, proposals, resized);
    expect(Array.from(detections.labels)).toEqual(f.labels);
    expect(Array.from(detections.scores)).toEqual(f.scores);
    expect(Array.from(detections.boxes)).toEqual(f.boxes);
    resizeBoxes(detections.boxes, resized, { width: f.original[0], height: f.original[1] });
    expect(Array.from(detections.boxes)).toEqual(f.boxes_in_original);
  });

  it('a higher score threshold, a class filter and a smaller maximum select a subset of the default result', () => {
    const all = postprocessor.postprocess(classLogits, boxRegression, proposals, resized, { maxDetections: 1000 });
    const some = postprocessor.postprocess(classLogits, boxRegression, proposals, resized, {
      scoreThreshold: 0.3,
      classIds: new Set([2, 3]),
      maxDetections: 5,
    });
    const expected: number[] = [];
    for (let i = 0; i < all.scores.length && expected.length < 5; i++) {
      if (all.scores[i]! >= Math.fround(0.3) && (all.labels[i] === 2 || all.labels[i] === 3)) expected.push(i);
    }
    expect(expected.length).toBe(5);
    expect(Array.from(some.scores)).toEqual(expected.map((i) => all.scores[i]));
    expect(Array.from(some.labels)).toEqual(expected.map((i) => all.labels[i]));
  });

  it('a lower score threshold admits detections the model threshold would drop', () => {
    const low = postprocessor.postprocess(classLogits, boxRegression, proposals, resized, { scoreThreshold: 0.01, maxDetections: 10000 });
    const high = postprocessor.postprocess(classLogits, boxRegression, proposals, resized, { maxDetections: 10000 });
    expect(low.scores.length).toBeGreaterThan(high.scores.length);
    expect(Math.min(...low.scores)).toBeLessThan(f.score_thresh);
  });

  it('returns no detections for no proposals', () => {
    const none = postprocessor.postprocess(new Float32Array(0), new Float32Array(0), new Float32Array(0), resized);
    expect(none.scores.length).toBe(0);
  });

  it('rejects graph outputs whose size does not match the proposals with MODEL_INVALID', () => {
    expect(() => postprocessor.postprocess(new Float32Array(5), new Float32Array(20), new Float32Array(8), resized)).toThrow(
      expect.objectContaining({ code: 'MODEL_INVALID', message: expect.stringMatching(/expected 2x5 class logits/) }),
    );
  });
});

describe('softmaxRows', () => {
  it('normalizes each row, numerically stable for large logits', () => {
    const p = softmaxRows(new Float32Array([0, 0, 1000, 1000, 1, 2, 3, 4]), 4);
    expect(Array.from(p.subarray(0, 4))).toEqual([0, 0, 0.5, 0.5]);
    expect(p[7]).toBeGreaterThan(p[6]!);
  });
});
