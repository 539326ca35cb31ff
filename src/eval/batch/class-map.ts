/**
 * Which dataset category each model class is scored as. A torchvision COCO model (91 classes,
 * index = COCO category id, "N/A" for the unused ids) maps by id when every dataset category id
 * is one of its classes; any other model maps by name (case, spaces, '_' and '-' ignored).
 */
import { isUsableClassId, PLACEHOLDER_CLASS } from '../../detection/classes';
import { CocoEvalError } from '../errors';
import type { GroundTruth } from '../ground-truth';

export interface CategoryMapping {
  method: 'coco-id' | 'name';
  /** Per model class_id: index into gt.categoryIds, or -1 (detections of that class are dropped). */
  categoryIndexByClass: Int32Array;
  /** Model classes (usable ones: not background, not N/A; src/detection/classes.ts) that match no dataset category. */
  unmatchedClasses: string[];
  /** Dataset categories no model class maps to (their objects can only be missed). */
  categoriesWithoutClass: string[];
}

const BACKGROUND = '__background__';

function normalize(name: string): string {
  return name
    .trim()
    .toLowerCase()
    .replace(/[\s_-]+/g, ' ');
}

function isCocoModel(classes: readonly string[]): boolean {
  return classes.length === 91 && classes[0] === BACKGROUND && classes[1] === 'person' && classes.includes(PLACEHOLDER_CLASS);
}

export function mapClassesToCategories(classes: readonly string[], gt: GroundTruth, modelDir: string): CategoryMapping {
  const categoryIndexByClass = new Int32Array(classes.length).fill(-1);
  const isRealClass = (c: number): boolean => isUsableClassId(classes, c);
  let method: CategoryMapping['method'];
  if (isCocoModel(classes) && gt.categoryIds.every((id) => Number.isInteger(id) && id < classes.length && isRealClass(id))) {
    method = 'coco-id';
    gt.categoryIds.forEach((id, index) => {
      categoryIndexByClass[id] = index;
    });
  } else {
    method = 'name';
    const byName = new Map<string, number>();
    const ambiguous = new Set<string>();
    gt.categoryNames.forEach((name, index) => {
      const key = normalize(name);
      if (byName.has(key)) ambiguous.add(key);
      byName.set(key, index);
    });
    for (let c = 0; c < classes.length; c++) {
      if (!isRealClass(c)) continue;
      const key = normalize(classes[c]!);
      const index = byName.get(key);
      if (index !== undefined && !ambiguous.has(key)) categoryIndexByClass[c] = index;
    }
  }
  const mapped = new Set<number>();
  const unmatchedClasses: string[] = [];
  for (let c = 0; c < classes.length; c++) {
    if (!isRealClass(c)) continue;
    if (categoryIndexByClass[c] === -1) unmatchedClasses.push(classes[c]!);
    else mapped.add(categoryIndexByClass[c]!);
  }
  if (mapped.size === 0) {
    throw new CocoEvalError(
      'MODEL_CLASSES_UNMATCHED',
      `no class of the model in ${modelDir} (${classes
        .filter((_, c) => isRealClass(c))
        .slice(0, 10)
        .join(', ')}) ` +
        `matches a category of ${gt.file} (${gt.categoryNames.slice(0, 10).join(', ')}): classes map to categories by name`,
      { file: gt.file, field: 'categories' },
    );
  }
  const categoriesWithoutClass = gt.categoryNames.filter((_, index) => !mapped.has(index));
  return { method, categoryIndexByClass, unmatchedClasses, categoriesWithoutClass };
}
