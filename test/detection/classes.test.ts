import {
  describeClasses,
  isUsableClassId,
  LISTED_CLASSES,
  PLACEHOLDER_CLASS,
  resolveClass,
  resolveClasses,
  unknownClassMessage,
  usableClasses,
} from '../../src/detection/classes';
import { loadModelDirectory } from '../../src/detection/model';

// the shape of torchvision's COCO list: background, classes, and 'N/A' placeholders in the id gaps
const CLASSES = ['__background__', 'circle', 'N/A', 'square', 'triangle'];

describe('usable classes', () => {
  it('excludes the background (0), the N/A placeholders and ids outside the list', () => {
    expect([0, 1, 2, 3, 4, 5, -1, 1.5].map((id) => isUsableClassId(CLASSES, id))).toEqual([
      false,
      true,
      false,
      true,
      true,
      false,
      false,
      false,
    ]);
    expect(usableClasses(CLASSES)).toEqual([
      { class_id: 1, label: 'circle' },
      { class_id: 3, label: 'square' },
      { class_id: 4, label: 'triangle' },
    ]);
    expect(PLACEHOLDER_CLASS).toBe('N/A');
  });

  it('the fixture model: every class but the background is usable', async () => {
    const { manifest } = await loadModelDirectory('models/shapes-cpwc-r50-fpn', { verifyChecksums: false });
    expect(usableClasses(manifest.classes).map((c) => c.class_id)).toEqual(manifest.classes.map((_, i) => i).slice(1));
  });
});

describe('resolveClass', () => {
  it('resolves a label, a class id and a string of digits to the class id', () => {
    expect(resolveClass(CLASSES, 'square')).toEqual({ ok: true, value: 3 });
    expect(resolveClass(CLASSES, 4)).toEqual({ ok: true, value: 4 });
    expect(resolveClass(CLASSES, '1')).toEqual({ ok: true, value: 1 });
  });

  it.each([['hexagon'], ['N/A'], ['__background__'], [0], ['0'], [2], ['2'], [5], [1.5], ['Square'], [null]])(
    'refuses %p, listing the known classes',
    (entry) => {
      expect(resolveClass(CLASSES, entry)).toEqual({ ok: false, message: unknownClassMessage(CLASSES, entry) });
    },
  );

  it('words the failure with the classes and their ids', () => {
    expect(unknownClassMessage(CLASSES, 'hexagon')).toBe(
      "unknown class 'hexagon'; this model's classes are circle (1), square (3), triangle (4)",
    );
    expect(unknownClassMessage(CLASSES, 7)).toBe("unknown class 7; this model's classes are circle (1), square (3), triangle (4)");
  });

  it('lists at most LISTED_CLASSES classes, then how many more', () => {
    const many = ['__background__', ...Array.from({ length: LISTED_CLASSES + 5 }, (_, i) => `c${i + 1}`)];
    const text = describeClasses(many);
    expect(text.startsWith('c1 (1), c2 (2), ')).toBe(true);
    expect(text.endsWith(`c${LISTED_CLASSES} (${LISTED_CLASSES}), … 5 more`)).toBe(true);
    expect(describeClasses(many, '(GET /v1/models)').endsWith('… 5 more (GET /v1/models)')).toBe(true);
    expect(describeClasses(CLASSES, '(GET /v1/models)')).toBe('circle (1), square (3), triangle (4)');
    expect(resolveClass(many, 'c99', '(see X)')).toEqual({
      ok: false,
      message: `unknown class 'c99'; this model's classes are ${describeClasses(many, '(see X)')}`,
    });
  });
});

describe('resolveClasses', () => {
  it('resolves in order, removing duplicates (a label and its id are the same class)', () => {
    expect(resolveClasses(CLASSES, ['triangle', 1, '4', 'circle'])).toEqual({ ok: true, value: [4, 1] });
  });

  it('fails on the first unknown entry', () => {
    expect(resolveClasses(CLASSES, ['circle', 'hexagon', 'N/A'])).toEqual({ ok: false, message: unknownClassMessage(CLASSES, 'hexagon') });
  });
});
