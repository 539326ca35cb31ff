/**
 * Detections (COCO results) as typed arrays, mapped onto a ground truth's image and category
 * indices. Storage order is file order: it breaks score ties, exactly as in pycocotools.
 */
import { CocoEvalError } from './errors';
import type { GroundTruth } from './ground-truth';
import { readResultsFile, recordLocation, type ResultsFormat } from './results-reader';
import { readBbox, requireFiniteNumber, requireId, requireObject } from './validate';

export interface Detections {
  /** Detections in a category of the ground truth (the only ones that are scored). */
  count: number;
  imageIndex: Int32Array;
  categoryIndex: Int32Array;
  /** [x, y, w, h] per detection. */
  bbox: Float64Array;
  score: Float64Array;
  /** Detections whose category_id is not a ground-truth category; pycocotools ignores them silently. */
  unknownCategory: number;
}

/** Growable detection table; `add` takes plain numbers so producers need no per-detection objects. */
export class DetectionTable {
  private capacity: number;
  private imageIndex: Int32Array;
  private categoryIndex: Int32Array;
  private bbox: Float64Array;
  private score: Float64Array;
  count = 0;
  unknownCategory = 0;

  constructor(initialCapacity = 1024) {
    this.capacity = Math.max(16, initialCapacity);
    this.imageIndex = new Int32Array(this.capacity);
    this.categoryIndex = new Int32Array(this.capacity);
    this.bbox = new Float64Array(4 * this.capacity);
    this.score = new Float64Array(this.capacity);
  }

  add(imageIndex: number, categoryIndex: number, x: number, y: number, w: number, h: number, score: number): void {
    if (this.count === this.capacity) this.grow();
    const i = this.count++;
    this.imageIndex[i] = imageIndex;
    this.categoryIndex[i] = categoryIndex;
    const b = 4 * i;
    this.bbox[b] = x;
    this.bbox[b + 1] = y;
    this.bbox[b + 2] = w;
    this.bbox[b + 3] = h;
    this.score[i] = score;
  }

  finish(): Detections {
    const n = this.count;
    return {
      count: n,
      imageIndex: this.imageIndex.slice(0, n),
      categoryIndex: this.categoryIndex.slice(0, n),
      bbox: this.bbox.slice(0, 4 * n),
      score: this.score.slice(0, n),
      unknownCategory: this.unknownCategory,
    };
  }

  private grow(): void {
    this.capacity *= 2;
    const imageIndex = new Int32Array(this.capacity);
    imageIndex.set(this.imageIndex);
    this.imageIndex = imageIndex;
    const categoryIndex = new Int32Array(this.capacity);
    categoryIndex.set(this.categoryIndex);
    this.categoryIndex = categoryIndex;
    const bbox = new Float64Array(4 * this.capacity);
    bbox.set(this.bbox);
    this.bbox = bbox;
    const score = new Float64Array(this.capacity);
    score.set(this.score);
    this.score = score;
  }
}

/**
 * Validates one results record ({image_id, category_id, bbox, score}) and appends it.
 * Throws UNKNOWN_IMAGE for an image the ground truth does not list (pycocotools asserts).
 */
export function addResultRecord(
  table: DetectionTable,
  gt: GroundTruth,
  record: unknown,
  ctx: { file: string; location: string },
  bboxScratch: Float64Array,
): void {
  const detection = requireObject(record, ctx, 'a detection');
  const imageId = requireId(detection, 'image_id', ctx);
  const categoryId = requireId(detection, 'category_id', ctx);
  readBbox(detection, ctx, bboxScratch, 0);
  const score = requireFiniteNumber(detection, 'score', ctx);
  const imageIndex = gt.imageIndexById.get(imageId);
  if (imageIndex === undefined) {
    throw new CocoEvalError('UNKNOWN_IMAGE', `${ctx.file}: ${ctx.location}: image_id ${imageId} is not an image of ${gt.file}`, {
      ...ctx,
      field: 'image_id',
    });
  }
  const categoryIndex = gt.categoryIndexById.get(categoryId);
  if (categoryIndex === undefined) {
    table.unknownCategory++;
    return;
  }
  table.add(imageIndex, categoryIndex, bboxScratch[0]!, bboxScratch[1]!, bboxScratch[2]!, bboxScratch[3]!, score);
}

/** Streams a results file (JSON array or JSON Lines) into a detection table. */
export function loadDetectionsFile(file: string, gt: GroundTruth): Detections & { format: ResultsFormat } {
  const table = new DetectionTable(1 << 14);
  const scratch = new Float64Array(4);
  const { format } = readResultsFile(file, (record, index, line, recordFormat) => {
    addResultRecord(table, gt, record, { file, location: recordLocation(recordFormat, index, line) }, scratch);
  });
  return { ...table.finish(), format };
}
