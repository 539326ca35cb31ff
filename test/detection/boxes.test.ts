import { boxArea, boxIou, clipBoxesToImage, gather, gatherBoxes, removeSmallBoxes } from '../../src/detection/boxes';

describe('clipBoxesToImage', () => {
  it('clamps x to [0, width] and y to [0, height] in place', () => {
    const boxes = new Float32Array([-5, -1, 700, 500, 10, 20, 30, 40]);
    expect(clipBoxesToImage(boxes, 480, 640)).toBe(boxes);
    expect(Array.from(boxes)).toEqual([0, 0, 640, 480, 10, 20, 30, 40]);
  });
});

describe('removeSmallBoxes', () => {
  it('keeps boxes whose both sides are >= min size (equality kept), in input order', () => {
    const boxes = new Float32Array([0, 0, 1, 1, 0, 0, 0.5, 5, 0, 0, 5, 0.0009, 3, 3, 2, 9]);
    expect(Array.from(removeSmallBoxes(boxes, 0.001))).toEqual([0, 1]);
    expect(Array.from(removeSmallBoxes(boxes, 1))).toEqual([0]);
  });

  it('compares with the threshold rounded to float32, as torch does (0.7 -> 0.69999998)', () => {
    const side = Math.fround(0.7);
    expect(side).toBeLessThan(0.7);
    expect(Array.from(removeSmallBoxes(new Float32Array([0, 0, side, side]), 0.7))).toEqual([0]);
  });

  it('removes boxes with a NaN side', () => {
    expect(Array.from(removeSmallBoxes(new Float32Array([0, 0, NaN, 1]), 0.01))).toEqual([]);
  });
});

describe('boxArea / boxIou', () => {
  it('computes area and IoU, with disjoint boxes at 0 and a zero-area pair at NaN as in torchvision', () => {
    const a = new Float32Array([0, 0, 10, 10, 5, 0, 15, 10, 20, 20, 30, 30, 1, 1, 1, 1]);
    expect(boxArea(a, 0)).toBe(100);
    expect(boxIou(a, 0, a, 1)).toBe(Math.fround(50 / 150));
    expect(boxIou(a, 0, a, 2)).toBe(0);
    expect(boxIou(a, 3, a, 3)).toBeNaN();
  });
});

describe('gather helpers', () => {
  it('gather rows and values in index order', () => {
    const boxes = new Float32Array([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(Array.from(gatherBoxes(boxes, [1, 0, 1]))).toEqual([4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7]);
    const labels = gather(new Int32Array([7, 8, 9]), [2, 0]);
    expect(labels).toBeInstanceOf(Int32Array);
    expect(Array.from(labels)).toEqual([9, 7]);
  });
});
