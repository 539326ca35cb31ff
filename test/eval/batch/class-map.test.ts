import { mapClassesToCategories } from '../../../src/eval/batch/class-map';
import type { CocoEvalError } from '../../../src/eval/errors';
import { parseGroundTruth } from '../../../src/eval/ground-truth';

function gtWith(categories: { id: number; name: string }[]) {
  return parseGroundTruth({ images: [], annotations: [], categories }, 'gt.json');
}

/** torchvision's COCO_V1 class list shape: 91 entries, "N/A" at the unused ids. */
function cocoClasses(): string[] {
  const classes = Array.from({ length: 91 }, (_, i) => `coco-${i}`);
  classes[0] = '__background__';
  classes[1] = 'person';
  for (const id of [12, 26, 29, 30, 45, 66, 68, 69, 71, 83]) classes[id] = 'N/A';
  return classes;
}

describe('mapClassesToCategories', () => {
  it('maps by name, ignoring case, spaces, underscores and hyphens', () => {
    const gt = gtWith([
      { id: 7, name: 'Traffic Light' },
      { id: 3, name: 'circle' },
      { id: 5, name: 'zebra' },
    ]);
    const mapping = mapClassesToCategories(['__background__', 'circle', 'traffic_light', 'square'], gt, 'model');
    expect(mapping.method).toBe('name');
    // Category indices follow ascending ids: 3 -> 0, 5 -> 1, 7 -> 2.
    expect(Array.from(mapping.categoryIndexByClass)).toEqual([-1, 0, 2, -1]);
    expect(mapping.unmatchedClasses).toEqual(['square']);
    expect(mapping.categoriesWithoutClass).toEqual(['zebra']);
  });

  it('maps a COCO model by id when every category id is one of its classes, even under other names', () => {
    const gt = gtWith([
      { id: 1, name: 'human' },
      { id: 90, name: 'toothbrush' },
    ]);
    const mapping = mapClassesToCategories(cocoClasses(), gt, 'model');
    expect(mapping.method).toBe('coco-id');
    expect(mapping.categoryIndexByClass[1]).toBe(0);
    expect(mapping.categoryIndexByClass[90]).toBe(1);
    expect(mapping.categoryIndexByClass[2]).toBe(-1);
  });

  it('falls back to names for a COCO model when a category id is an N/A slot', () => {
    const gt = gtWith([
      { id: 12, name: 'coco-13' },
      { id: 1, name: 'person' },
    ]);
    const mapping = mapClassesToCategories(cocoClasses(), gt, 'model');
    expect(mapping.method).toBe('name');
    expect(mapping.categoryIndexByClass[1]).toBe(0);
    expect(mapping.categoryIndexByClass[13]).toBe(1);
  });

  it('refuses a model none of whose classes is a dataset category', () => {
    const err = (() => {
      try {
        mapClassesToCategories(['__background__', 'circle'], gtWith([{ id: 1, name: 'dog' }]), 'models/shapes');
      } catch (e) {
        return e as CocoEvalError;
      }
      throw new Error('expected an error');
    })();
    expect(err.code).toBe('MODEL_CLASSES_UNMATCHED');
    expect(err.message).toContain('no class of the model in models/shapes (circle) matches a category of gt.json (dog)');
  });
});
