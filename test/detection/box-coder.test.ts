import { BoxCoder, type BoxCoderWeights } from '../../src/detection/box-coder';
import { float32FromBase64, hashArray, hashBoxes, readTorchvisionFixture, unequalIndices } from './hash-values';

interface BoxCoderFixture {
  cases: Array<{
    weights: BoxCoderWeights;
    bbox_xform_clip: number;
    count: number;
    per_box: number;
    boxes_salt: number;
    boxes_extent: number;
    boxes_max_side: number;
    deltas_salt: number;
    deltas_range: [number, number];
    decoded: string;
  }>;
}

const fixture = readTorchvisionFixture<BoxCoderFixture>('box-coder.json');

describe('BoxCoder.decode', () => {
  it.each(fixture.cases.map((c) => [c.weights.join(','), c] as const))(
    'weights (%s): equals torchvision decode_single bit for bit, incl. clipped dw/dh',
    (_, c) => {
      const boxes = hashBoxes(c.count, c.boxes_salt, c.boxes_extent, c.boxes_max_side);
      const deltas = hashArray(c.count * c.per_box * 4, c.deltas_salt, c.deltas_range[0], c.deltas_range[1]);
      const decoded = new BoxCoder(c.weights, c.bbox_xform_clip).decode(deltas, boxes);
      const expected = float32FromBase64(c.decoded);
      expect(decoded.length).toBe(expected.length);
      expect(unequalIndices(decoded, expected)).toEqual([]);
    },
  );

  it('decodes zero deltas to the reference box and caps exp(dw) at exp(bbox_xform_clip)', () => {
    const coder = new BoxCoder([1, 1, 1, 1]);
    const box = new Float32Array([10, 20, 30, 60]);
    expect(Array.from(coder.decode(new Float32Array(4), box))).toEqual([10, 20, 30, 60]);
    const huge = coder.decode(new Float32Array([0, 0, 100, 100]), box);
    const capped = coder.decode(new Float32Array([0, 0, Math.log(1000 / 16), Math.log(1000 / 16)]), box);
    expect(Array.from(huge)).toEqual(Array.from(capped));
  });

  it('returns no boxes for no boxes', () => {
    expect(new BoxCoder([10, 10, 5, 5]).decode(new Float32Array(0), new Float32Array(0))).toHaveLength(0);
  });
});
