/**
 * Which class ids of a model are usable, and how a user names one: ONE implementation for the
 * library (DetectOptions.classes), the server (classes=…, /v1/models, OpenAPI) and the evaluator's
 * class-to-category mapping. A model's `classes` list is indexed by class id: id 0 is the
 * background, and torchvision's COCO models keep the unused COCO ids as 'N/A' placeholders.
 */
import { describeActual, type Parsed } from '../common/validate';

/** The label of a class id a model reserves but never predicts (torchvision's COCO category gaps). */
export const PLACEHOLDER_CLASS = 'N/A';

/** Class id 0 is the background: never a detection. */
export const BACKGROUND_CLASS_ID = 0;

/** How many known classes an "unknown class" message lists before "… N more". */
export const LISTED_CLASSES = 20;

/** A class a model can predict. */
export interface UsableClass {
  class_id: number;
  label: string;
}

/** Whether `id` is a class id this model can predict: an integer, not the background, not a placeholder. */
export function isUsableClassId(classes: readonly string[], id: number): boolean {
  return Number.isInteger(id) && id > BACKGROUND_CLASS_ID && id < classes.length && classes[id] !== PLACEHOLDER_CLASS;
}

/** The classes this model can predict, by ascending class id. */
export function usableClasses(classes: readonly string[]): UsableClass[] {
  const usable: UsableClass[] = [];
  classes.forEach((label, class_id) => {
    if (isUsableClassId(classes, class_id)) usable.push({ class_id, label });
  });
  return usable;
}

/**
 * Resolves how a user names a class: a number is a class id; a string of digits ("2") is a class
 * id; any other string is a label, matched exactly. Fails (with the list of known classes) on
 * anything that is not a usable class of this model.
 */
export function resolveClass(classes: readonly string[], entry: unknown, moreHint?: string): Parsed<number> {
  let id = -1;
  if (typeof entry === 'number') id = entry;
  else if (typeof entry === 'string') id = /^\d+$/.test(entry) ? Number(entry) : classes.indexOf(entry);
  if (isUsableClassId(classes, id)) return { ok: true, value: id };
  return { ok: false, message: unknownClassMessage(classes, entry, moreHint) };
}

/**
 * Resolves a list of class names or ids to class ids, duplicates removed, in the given order;
 * the first unknown entry fails the whole list.
 */
export function resolveClasses(classes: readonly string[], entries: readonly unknown[], moreHint?: string): Parsed<number[]> {
  const ids: number[] = [];
  for (const entry of entries) {
    const resolved = resolveClass(classes, entry, moreHint);
    if (!resolved.ok) return resolved;
    if (!ids.includes(resolved.value)) ids.push(resolved.value);
  }
  return { ok: true, value: ids };
}

/**
 * "unknown class 'hexagon'; this model's classes are circle (1), square (3), … 70 more"; `moreHint`
 * follows "more" when the list is cut (the server: "(GET /v1/models)").
 */
export function unknownClassMessage(classes: readonly string[], entry: unknown, moreHint?: string): string {
  return `unknown class ${describeActual(entry)}; this model's classes are ${describeClasses(classes, moreHint)}`;
}

/** The usable classes as "circle (1), square (3)", at most LISTED_CLASSES, then "… N more" (and `moreHint`). */
export function describeClasses(classes: readonly string[], moreHint?: string): string {
  const usable = usableClasses(classes);
  const listed = usable
    .slice(0, LISTED_CLASSES)
    .map(({ label, class_id }) => `${label} (${class_id})`)
    .join(', ');
  if (usable.length <= LISTED_CLASSES) return listed;
  return `${listed}, … ${usable.length - LISTED_CLASSES} more${moreHint === undefined ? '' : ` ${moreHint}`}`;
}
