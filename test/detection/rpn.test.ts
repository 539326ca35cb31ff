import { AnchorGenerator } from '../../src/detection/anchors';
import { DEFAULT_BBOX_XFORM_CLIP } from '../../src/detection/box-coder';
import { DetectError } from '../../src/detection/errors';
import { RegionProposalFilter, rpnLevelGrid, sigmoid, topKIndices, type RpnLevelOutput } from '../../src/detection/rpn';
import { expf } from '../../src/detection/float32';
import { compareDecodedBoxes } from './exp-rounding';
import { hashArray, readTorchvisionFixture } from './hash-values';

interface RpnFixture {
  padded: [number, number];
  resized: [number, number];
  grids: Array<[number, number]>;
  sizes: number[][];
  aspect_ratios: number[][];
  pre_nms_top_n: number;
  post_nms_top_n: number;
  nms_thresh: number;
  score_thresh: number;
  min_size: number;
  objectness_salt: number;
  objectness_range: [number, number];
  deltas_salt: number;
  deltas_range: [number, number];
  boxes: number[];
  scores: number[];
}

const fixture = readTorchvisionFixture<RpnFixture>('rpn.json');

describe('RegionProposalFilter.filterProposals', () => {
  it('equals torchvision RegionProposalNetwork.filter_proposals on a 5-level FPN head output', () => {
    const anchors = new AnchorGenerator(fixture.sizes.map((sizes, l) => ({ sizes, aspectRatios: fixture.aspect_ratios[l]! })));
    const filter = new RegionProposalFilter(anchors, {
      preNmsTopN: fixture.pre_nms_top_n,
      postNmsTopN: fixture.post_nms_top_n,
      nmsThresh: fixture.nms_thresh,
      scoreThresh: fixture.score_thresh,
      minSize: fixture.min_size,
      boxCoderWeights: [1, 1, 1, 1],
      bboxXformClip: DEFAULT_BBOX_XFORM_CLIP,
    });
    const levels: RpnLevelOutput[] = fixture.grids.map(([height, width], l) => ({
      height,
      width,
      objectness: hashArray(3 * height * width, fixture.objectness_salt + l, ...fixture.objectness_range),
      bboxDeltas: hashArray(12 * height * width, fixture.deltas_salt + l, ...fixture.deltas_range),
    }));
    const [paddedWidth, paddedHeight] = fixture.padded;
    const [resizedWidth, resizedHeight] = fixture.resized;
    const proposals = filter.filterProposals(
      levels,
      { width: paddedWidth, height: paddedHeight },
      { width: resizedWidth, height: resizedHeight },
    );
    expect(Array.from(proposals.scores)).toEqual(fixture.scores);
    // Every box bit for bit but where torch.exp (MKL) and ours part at a near-tie: measured 2 coordinates of 162 boxes.
    const { beyond, withinExpRounding } = compareDecodedBoxes(proposals.boxes, fixture.boxes);
    expect(beyond).toEqual([]);
    expect(withinExpRounding).toBeLessThanOrEqual(fixture.boxes.length / 100);
  });
});

describe('topKIndices', () => {
  it('returns the k largest in descending order, ties in index order', () => {
    const values = new Float32Array([1, 5, 3, 5, -2, 3, 9]);
    expect(Array.from(topKIndices(values, 4))).toEqual([6, 1, 3, 2]);
    expect(Array.from(topKIndices(values, 100))).toEqual([6, 1, 3, 2, 5, 0, 4]);
    expect(Array.from(topKIndices(values, 0))).toEqual([]);
  });

  it('agrees with a full sort on 200000 values', () => {
    const values = hashArray(200000, 42, -8, 8);
    const expected = Array.from(values.keys())
      .sort((a, b) => values[b]! - values[a]! || a - b)
      .slice(0, 1000);
    expect(Array.from(topKIndices(values, 1000))).toEqual(expected);
  });
});

describe('sigmoid', () => {
  it('is float32 and saturates to exactly 1 for large logits like torch', () => {
    expect(sigmoid(0)).toBe(0.5);
    expect(sigmoid(20)).toBe(1);
    expect(sigmoid(-3)).toBe(Math.fround(1 / Math.fround(1 + expf(3))));
  });
});

describe('rpnLevelGrid', () => {
  it('reads height and width from a [1, C, height, width] output', () => {
    expect(rpnLevelGrid([1, 3, 25, 38], 'objectness_0')).toEqual({ height: 25, width: 38 });
  });

  it('rejects any other shape with MODEL_INVALID naming the output', () => {
    for (const dims of [[3, 25, 38], [2, 3, 25, 38], [1, 3, 25, 38, 1], []]) {
      expect(() => rpnLevelGrid(dims, 'objectness_p2')).toThrow(DetectError);
      expect(() => rpnLevelGrid(dims, 'objectness_p2')).toThrow(
        expect.objectContaining({
          code: 'MODEL_INVALID',
          message: `backbone_rpn output objectness_p2 must be [1, C, height, width], got [${dims.join(', ')}]`,
        }) as Error,
      );
    }
  });
});
