import { AnchorGenerator, cellAnchors, levelStride } from '../../src/detection/anchors';
import { float32FromBase64, readTorchvisionFixture } from './hash-values';

interface AnchorsFixture {
  cases: Array<{
    sizes: number[][];
    aspect_ratios: number[][];
    padded: [number, number];
    grids: Array<[number, number]>;
    levels: Array<{ cell_anchors: number[]; anchors: string }>;
  }>;
}

const fixture = readTorchvisionFixture<AnchorsFixture>('anchors.json');

describe('AnchorGenerator', () => {
  it.each(fixture.cases.map((c, i) => [i, c] as const))('case %i: cell anchors equal torchvision generate_anchors', (_, c) => {
    c.levels.forEach((level, l) => {
      expect(Array.from(cellAnchors({ sizes: c.sizes[l]!, aspectRatios: c.aspect_ratios[l]! }))).toEqual(level.cell_anchors);
    });
  });

  it.each(fixture.cases.map((c, i) => [i, c] as const))('case %i: every grid anchor equals torchvision grid_anchors', (_, c) => {
    const generator = new AnchorGenerator(c.sizes.map((sizes, l) => ({ sizes, aspectRatios: c.aspect_ratios[l]! })));
    const [paddedHeight, paddedWidth] = c.padded;
    c.levels.forEach((level, l) => {
      const [gridHeight, gridWidth] = c.grids[l]!;
      const anchors = generator.gridAnchors(l, gridHeight, gridWidth, levelStride(paddedHeight, paddedWidth, gridHeight, gridWidth));
      expect(Array.from(anchors)).toEqual(Array.from(float32FromBase64(level.anchors)));
    });
  });

  it('computes the stride per axis as padded // grid, like torchvision (800x1216 pool level: 61 x 64)', () => {
    expect(levelStride(800, 1216, 13, 19)).toEqual({ strideHeight: 61, strideWidth: 64 });
  });

  it('writes a single anchor identical to the same row of the full grid', () => {
    const generator = new AnchorGenerator([{ sizes: [32, 64], aspectRatios: [0.5, 1, 2] }]);
    const stride = levelStride(64, 96, 8, 12);
    const grid = generator.gridAnchors(0, 8, 12, stride);
    const one = new Float32Array(4);
    for (const index of [0, 5, 6, 100, 8 * 12 * 6 - 1]) {
      generator.writeAnchor(0, index, 12, stride, one, 0);
      expect(Array.from(one)).toEqual(Array.from(grid.subarray(index * 4, index * 4 + 4)));
    }
    expect(generator.anchorsPerLocation(0)).toBe(6);
  });

  it('refuses a level it was not configured with (MODEL_INVALID)', () => {
    const generator = new AnchorGenerator([{ sizes: [32], aspectRatios: [1] }]);
    expect(() => generator.anchorsPerLocation(1)).toThrow(
      expect.objectContaining({ code: 'MODEL_INVALID', message: 'RPN level 1 has no anchors: the model configures 1 levels' }),
    );
  });
});
