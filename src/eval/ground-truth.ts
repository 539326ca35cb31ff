/**
 * COCO "instances" ground truth, loaded into typed arrays.
 *
 * Image and category indices follow pycocotools: `imgIds = sorted(unique(image ids))`,
 * `catIds = sorted(unique(category ids))`. Annotations keep file order (it decides which of two
 * equally good GT boxes a detection matches). Like pycocotools, annotations of images or
 * categories that the file does not list take no part in the evaluation; they are counted.
 */
import { checkNumber } from '../common/validate';
import { readFileSync } from 'node:fs';
import { CocoEvalError } from './errors';
import { findJsonError } from './json-error';
import {
  optionalCrowdFlag,
  readBbox,
  requireArray,
  requireFiniteNumber,
  requireId,
  requireObject,
  requireString,
  type JsonObject,
} from './validate';

export interface ImageInfo {
  id: number;
  file_name: string | undefined;
  width: number | undefined;
  height: number | undefined;
}

export interface GroundTruth {
  file: string;
  /** Sorted ascending; position = image index. */
  images: ImageInfo[];
  imageIndexById: Map<number, number>;
  /** Sorted ascending by id; position = category index. */
  categoryIds: number[];
  categoryNames: string[];
  categoryIndexById: Map<number, number>;
  annotations: GroundTruthAnnotations;
  /** Annotations skipped because their image or category is not listed (pycocotools ignores them too). */
  skippedAnnotations: { unknownImage: number; unknownCategory: number };
}

export interface GroundTruthAnnotations {
  count: number;
  imageIndex: Int32Array;
  categoryIndex: Int32Array;
  /** [x, y, w, h] per annotation. */
  bbox: Float64Array;
  /** The `area` field (mask area in COCO), which decides small/medium/large, not w*h. */
  area: Float64Array;
  crowd: Uint8Array;
  /**
   * 1 where the annotation id is 0: pycocotools records matches by GT id, so a match to id 0
   * reads as "no match". We copy that quirk to stay identical.
   */
  idIsZero: Uint8Array;
}

/** Reads and parses a COCO instances file. */
export function loadGroundTruthFile(file: string): GroundTruth {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CocoEvalError('FILE_UNREADABLE', `${file}: cannot read annotation file: ${(err as Error).message}`, { file }, { cause: err });
  }
  return parseGroundTruth(parseJsonText(text, file), file);
}

/** JSON.parse with a message that says where (line, column) the text stops being JSON. */
export function parseJsonText(text: string, file: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return JSON.parse(body);
  } catch (err) {
    const position = findJsonError(body);
    const truncated = position?.truncated ?? false;
    const location = position === undefined ? 'invalid JSON' : `line ${position.line}, column ${position.column}`;
    const what = truncated ? 'the file ends before the JSON value is complete' : 'not valid JSON';
    throw new CocoEvalError(
      truncated ? 'JSON_TRUNCATED' : 'JSON_MALFORMED',
      `${file}: ${location}: ${what} (${(err as Error).message})`,
      { file, location },
      { cause: err },
    );
  }
}

/** Validates a parsed COCO instances object and converts it to typed arrays. */
export function parseGroundTruth(root: unknown, file: string): GroundTruth {
  const dataset = requireObject(root, { file }, 'a COCO annotation file');
  const imagesJson = requireArray(dataset, 'images', { file });
  const annotationsJson = requireArray(dataset, 'annotations', { file });
  const categoriesJson = requireArray(dataset, 'categories', { file });

  const images: ImageInfo[] = imagesJson.map((value, i) => {
    const ctx = { file, location: `images[${i}]` };
    const image = requireObject(value, ctx, 'an image');
    return {
      id: requireId(image, 'id', ctx),
      file_name: optionalString(image, 'file_name', ctx),
      width: optionalSize(image, 'width', ctx),
      height: optionalSize(image, 'height', ctx),
    };
  });
  images.sort((a, b) => a.id - b.id);
  const imageIndexById = new Map<number, number>();
  images.forEach((image, index) => {
    if (imageIndexById.has(image.id)) {
      throw new CocoEvalError('DUPLICATE_ID', `${file}: images: two images have id ${image.id}`, { file, location: 'images', field: 'id' });
    }
    imageIndexById.set(image.id, index);
  });

  const categories = categoriesJson.map((value, i) => {
    const ctx = { file, location: `categories[${i}]` };
    const category = requireObject(value, ctx, 'a category');
    return { id: requireId(category, 'id', ctx), name: requireString(category, 'name', ctx) };
  });
  categories.sort((a, b) => a.id - b.id);
  const categoryIndexById = new Map<number, number>();
  categories.forEach((category, index) => {
    if (categoryIndexById.has(category.id)) {
      throw new CocoEvalError('DUPLICATE_ID', `${file}: categories: two categories have id ${category.id}`, {
        file,
        location: 'categories',
        field: 'id',
      });
    }
    categoryIndexById.set(category.id, index);
  });

  const n = annotationsJson.length;
  const imageIndex = new Int32Array(n);
  const categoryIndex = new Int32Array(n);
  const bbox = new Float64Array(4 * n);
  const area = new Float64Array(n);
  const crowd = new Uint8Array(n);
  const idIsZero = new Uint8Array(n);
  const seenIds = new Set<number>();
  const skipped = { unknownImage: 0, unknownCategory: 0 };
  let count = 0;
  for (let i = 0; i < n; i++) {
    const ctx = { file, location: `annotations[${i}]` };
    const annotation: JsonObject = requireObject(annotationsJson[i], ctx, 'an annotation');
    const id = requireId(annotation, 'id', ctx);
    const imageId = requireId(annotation, 'image_id', ctx);
    const categoryId = requireId(annotation, 'category_id', ctx);
    readBbox(annotation, ctx, bbox, 4 * count);
    const annotationArea = requireFiniteNumber(annotation, 'area', ctx);
    const areaProblem = checkNumber(`field 'area'`, annotationArea, { min: 0 });
    if (areaProblem !== undefined)
      throw new CocoEvalError('FIELD_INVALID', `${file}: annotations[${i}]: ${areaProblem}`, { ...ctx, field: 'area' });
    const isCrowd = optionalCrowdFlag(annotation, ctx);
    if (seenIds.has(id)) {
      throw new CocoEvalError('DUPLICATE_ID', `${file}: annotations[${i}]: another annotation already has id ${id}`, {
        ...ctx,
        field: 'id',
      });
    }
    seenIds.add(id);
    const imgIdx = imageIndexById.get(imageId);
    const catIdx = categoryIndexById.get(categoryId);
    if (imgIdx === undefined) {
      skipped.unknownImage++;
      continue;
    }
    if (catIdx === undefined) {
      skipped.unknownCategory++;
      continue;
    }
    imageIndex[count] = imgIdx;
    categoryIndex[count] = catIdx;
    area[count] = annotationArea;
    crowd[count] = isCrowd ? 1 : 0;
    idIsZero[count] = id === 0 ? 1 : 0;
    count++;
  }

  return {
    file,
    images,
    imageIndexById,
    categoryIds: categories.map((c) => c.id),
    categoryNames: categories.map((c) => c.name),
    categoryIndexById,
    annotations: {
      count,
      imageIndex: imageIndex.subarray(0, count),
      categoryIndex: categoryIndex.subarray(0, count),
      bbox: bbox.subarray(0, 4 * count),
      area: area.subarray(0, count),
      crowd: crowd.subarray(0, count),
      idIsZero: idIsZero.subarray(0, count),
    },
    skippedAnnotations: skipped,
  };
}

function optionalString(record: JsonObject, field: string, ctx: { file: string; location: string }): string | undefined {
  return record[field] === undefined ? undefined : requireString(record, field, ctx);
}

function optionalSize(record: JsonObject, field: string, ctx: { file: string; location: string }): number | undefined {
  if (record[field] === undefined) return undefined;
  const value = requireFiniteNumber(record, field, ctx);
  const problem = checkNumber(`field '${field}'`, value, { min: 0 });
  if (problem !== undefined) {
    throw new CocoEvalError('FIELD_INVALID', `${ctx.file}: ${ctx.location}: ${problem}`, {
      ...ctx,
      field,
    });
  }
  return value;
}

/**
 * The same ground truth without some images and their annotations (pycocotools' `params.imgIds`
 * set to the rest). Batch runs use it to leave out images that could not be read.
 */
export function withoutImages(gt: GroundTruth, excludedImageIds: ReadonlySet<number>): GroundTruth {
  if (excludedImageIds.size === 0) return gt;
  const images = gt.images.filter((image) => !excludedImageIds.has(image.id));
  const newIndexByOld = new Int32Array(gt.images.length).fill(-1);
  const imageIndexById = new Map<number, number>();
  images.forEach((image, index) => {
    newIndexByOld[gt.imageIndexById.get(image.id)!] = index;
    imageIndexById.set(image.id, index);
  });
  const a = gt.annotations;
  const keep: number[] = [];
  for (let i = 0; i < a.count; i++) if (newIndexByOld[a.imageIndex[i]!]! >= 0) keep.push(i);
  const n = keep.length;
  const annotations: GroundTruthAnnotations = {
    count: n,
    imageIndex: new Int32Array(n),
    categoryIndex: new Int32Array(n),
    bbox: new Float64Array(4 * n),
    area: new Float64Array(n),
    crowd: new Uint8Array(n),
    idIsZero: new Uint8Array(n),
  };
  keep.forEach((i, j) => {
    annotations.imageIndex[j] = newIndexByOld[a.imageIndex[i]!]!;
    annotations.categoryIndex[j] = a.categoryIndex[i]!;
    annotations.bbox.set(a.bbox.subarray(4 * i, 4 * i + 4), 4 * j);
    annotations.area[j] = a.area[i]!;
    annotations.crowd[j] = a.crowd[i]!;
    annotations.idIsZero[j] = a.idIsZero[i]!;
  });
  return { ...gt, images, imageIndexById, annotations };
}
