/**
 * Seeded synthetic COCO datasets (instances + results) that exercise every pycocotools rule:
 * crowd regions, score ties, more than 100 detections per image and category, GT areas of exactly
 * 1024 and 9216 and detections whose w*h is exactly that, IoU exactly at a threshold, duplicate GT
 * boxes (equal-IoU ties), unknown categories, categories without GT, images without GT and empty
 * images. The same seed gives the same files on every platform (integer PRNG, no Math.random).
 *
 * This file imports nothing, so tools/bench/bench-eval.mjs can transpile and run it as it is.
 *
 * @example
 *   const { gt, dt } = syntheticCoco({ seed: 7, images: 20, categories: 6 });
 *   writeFileSync('gt.json', JSON.stringify(gt));
 *   writeFileSync('dt.json', JSON.stringify(dt));
 */

export type SyntheticBox = [number, number, number, number];

export interface SyntheticImage {
  id: number;
  width: number;
  height: number;
  file_name: string;
}

export interface SyntheticAnnotation {
  id: number;
  image_id: number;
  category_id: number;
  bbox: SyntheticBox;
  area: number;
  iscrowd: 0 | 1;
}

export interface SyntheticCategory {
  id: number;
  name: string;
  supercategory: string;
}

export interface SyntheticResult {
  image_id: number;
  category_id: number;
  bbox: SyntheticBox;
  score: number;
}

export interface SyntheticInstances {
  images: SyntheticImage[];
  annotations: SyntheticAnnotation[];
  categories: SyntheticCategory[];
}

export interface SyntheticOptions {
  /** Any 32-bit integer. */
  seed: number;
  /** Images in the instances file (at least 4: one empty, one without GT, one crowded, one normal). */
  images: number;
  /** Categories in the instances file (at least 2: one of them gets no GT). */
  categories: number;
  /** Upper bound of the GT objects drawn per ordinary image (default 8). */
  maxObjectsPerImage?: number;
}

/** How many of each edge case the generator put in (for information and for tests that need them). */
export interface SyntheticCounts {
  images: number;
  images_empty: number;
  images_without_gt: number;
  gt_annotations: number;
  gt_crowd: number;
  gt_area_1024: number;
  gt_area_9216: number;
  gt_duplicate_boxes: number;
  detections: number;
  detections_unknown_category: number;
  detections_in_category_without_gt: number;
  detections_area_boundary: number;
  detections_at_iou_threshold: number;
  detections_in_crowded_cell: number;
  score_quantum: number;
}

export interface SyntheticCase {
  gt: SyntheticInstances;
  /** Results in file order (the order breaks score ties). */
  dt: SyntheticResult[];
  counts: SyntheticCounts;
}

/** mulberry32: a small, fast 32-bit PRNG; `next()` is uniform in [0, 1). */
class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** Roughly normal (sum of uniforms), mean 0, standard deviation 1. */
  normal(): number {
    return this.next() + this.next() + this.next() + this.next() - 2;
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }

  /** `count` distinct integers from [lo, hi], in random order. */
  distinct(count: number, lo: number, hi: number): number[] {
    const seen = new Set<number>();
    while (seen.size < count) seen.add(this.int(lo, hi));
    return this.shuffle([...seen]);
  }
}

/** Per-case rates, drawn from the seed so that cases differ in character, not only in layout. */
interface Rates {
  crowd: number;
  miss: number;
  duplicate: number;
  wrongCategory: number;
  falsePositives: number;
  jitter: number;
  fractionalCoordinates: boolean;
  /** Scores are rounded to multiples of this (0: not rounded); coarse quanta make many ties. */
  scoreQuantum: number;
}

function drawRates(rng: Rng): Rates {
  return {
    crowd: rng.pick([0, 0.03, 0.08, 0.15]),
    miss: rng.uniform(0.05, 0.35),
    duplicate: rng.uniform(0, 0.3),
    wrongCategory: rng.uniform(0, 0.1),
    falsePositives: rng.uniform(0, 3),
    jitter: rng.pick([0.02, 0.06, 0.12, 0.25]),
    fractionalCoordinates: rng.chance(0.6),
    scoreQuantum: rng.pick([0, 0, 0.01, 0.05, 0.25]),
  };
}

const IMAGE_SIZES: readonly [number, number][] = [
  [640, 480],
  [480, 640],
  [500, 375],
  [1024, 768],
];

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

class Builder {
  readonly images: SyntheticImage[] = [];
  readonly annotations: SyntheticAnnotation[] = [];
  readonly dt: SyntheticResult[] = [];
  readonly counts: SyntheticCounts;

  constructor(
    private readonly rng: Rng,
    private readonly rates: Rates,
  ) {
    this.counts = {
      images: 0,
      images_empty: 0,
      images_without_gt: 0,
      gt_annotations: 0,
      gt_crowd: 0,
      gt_area_1024: 0,
      gt_area_9216: 0,
      gt_duplicate_boxes: 0,
      detections: 0,
      detections_unknown_category: 0,
      detections_in_category_without_gt: 0,
      detections_area_boundary: 0,
      detections_at_iou_threshold: 0,
      detections_in_crowded_cell: 0,
      score_quantum: rates.scoreQuantum,
    };
  }

  coordinate(x: number): number {
    return this.rates.fractionalCoordinates ? round2(x) : Math.round(x);
  }

  score(lo: number, hi: number): number {
    const s = this.rng.uniform(lo, hi);
    const q = this.rates.scoreQuantum;
    if (q === 0) return s;
    return Math.min(1, Math.max(q, Math.round(s / q) * q));
  }

  /** Box sides log-uniform from 2 to 400 px, so all three area ranges are well populated. */
  randomBox(image: SyntheticImage): SyntheticBox {
    const w = Math.exp(this.rng.uniform(Math.log(2), Math.log(400)));
    const h = w * Math.exp(this.rng.uniform(-0.8, 0.8));
    // Some boxes stick out of the image: pycocotools does not clip.
    const x = this.rng.uniform(-0.05 * w, image.width - 0.9 * w);
    const y = this.rng.uniform(-0.05 * h, image.height - 0.9 * h);
    return [this.coordinate(x), this.coordinate(y), Math.max(1, this.coordinate(w)), Math.max(1, this.coordinate(h))];
  }

  jittered(box: SyntheticBox, amount: number): SyntheticBox {
    const [x, y, w, h] = box;
    const nx = x + this.rng.normal() * amount * w;
    const ny = y + this.rng.normal() * amount * h;
    const nw = w * Math.exp(this.rng.normal() * amount);
    const nh = h * Math.exp(this.rng.normal() * amount);
    return [this.coordinate(nx), this.coordinate(ny), Math.max(0, this.coordinate(nw)), Math.max(0, this.coordinate(nh))];
  }

  addImage(id: number): SyntheticImage {
    const [width, height] = this.rng.pick(IMAGE_SIZES);
    const image = { id, width, height, file_name: `${String(id).padStart(12, '0')}.jpg` };
    this.images.push(image);
    this.counts.images++;
    return image;
  }

  addGt(image: SyntheticImage, categoryId: number, bbox: SyntheticBox, area: number, crowd: boolean): SyntheticAnnotation {
    const ann: SyntheticAnnotation = {
      id: this.annotations.length + 1,
      image_id: image.id,
      category_id: categoryId,
      bbox,
      area,
      iscrowd: crowd ? 1 : 0,
    };
    this.annotations.push(ann);
    this.counts.gt_annotations++;
    if (crowd) this.counts.gt_crowd++;
    if (area === 1024) this.counts.gt_area_1024++;
    if (area === 9216) this.counts.gt_area_9216++;
    return ann;
  }

  addDet(imageId: number, categoryId: number, bbox: SyntheticBox, score: number): void {
    this.dt.push({ image_id: imageId, category_id: categoryId, bbox, score });
    this.counts.detections++;
  }

  /** GT `area` is the mask area in COCO: usually below w*h, sometimes exactly on a range boundary. */
  gtArea(bbox: SyntheticBox): number {
    const u = this.rng.next();
    if (u < 0.06) return 1024;
    if (u < 0.12) return 9216;
    if (u < 0.5) return bbox[2] * bbox[3];
    return this.coordinate(bbox[2] * bbox[3] * this.rng.uniform(0.4, 1));
  }
}

/** Detections of one GT object: a jittered hit (or a miss), duplicates, a wrong-category copy. */
function detectObject(b: Builder, rng: Rng, rates: Rates, ann: SyntheticAnnotation, otherCategory: () => number): void {
  if (!rng.chance(rates.miss)) b.addDet(ann.image_id, ann.category_id, b.jittered(ann.bbox, rates.jitter), b.score(0.3, 1));
  while (rng.chance(rates.duplicate)) b.addDet(ann.image_id, ann.category_id, b.jittered(ann.bbox, rates.jitter * 2), b.score(0.05, 0.9));
  if (rng.chance(rates.wrongCategory)) b.addDet(ann.image_id, otherCategory(), b.jittered(ann.bbox, rates.jitter), b.score(0.05, 0.8));
}

/**
 * A GT box with integer sides and a detection whose IoU with it is exactly 0.5 or 0.75 (the same
 * box with its height scaled by 0.5, 0.75 or 2: every product and sum in the IoU is exact).
 */
function atThresholdPair(b: Builder, rng: Rng, image: SyntheticImage, categoryId: number): void {
  const w = rng.int(2, 200);
  const h = 4 * rng.int(2, 40);
  const x = rng.int(0, image.width - 10);
  const y = rng.int(0, image.height - 10);
  b.addGt(image, categoryId, [x, y, w, h], b.gtArea([x, y, w, h]), false);
  b.addDet(image.id, categoryId, [x, y, w, h * rng.pick([0.5, 0.75, 2])], b.score(0.2, 1));
  b.counts.detections_at_iou_threshold++;
}

/** Detections with w*h exactly 1024 or 9216, in or out of the small/medium/large boundaries. */
function detectAreaBoundary(b: Builder, rng: Rng, image: SyntheticImage, categoryId: number): void {
  const [w, h] = rng.pick<[number, number]>([
    [32, 32],
    [16, 64],
    [64, 16],
    [96, 96],
    [48, 192],
    [128, 72],
  ]);
  const x = rng.int(0, image.width - w);
  const y = rng.int(0, image.height - h);
  b.addDet(image.id, categoryId, [x, y, w, h], b.score(0.05, 1));
  b.counts.detections_area_boundary++;
}

/** Small detections inside a crowd box (matched to it with IoU = intersection / detection area). */
function detectInsideCrowd(b: Builder, rng: Rng, ann: SyntheticAnnotation): void {
  const [x, y, w, h] = ann.bbox;
  const n = rng.int(1, 6);
  for (let i = 0; i < n; i++) {
    const dw = w * rng.uniform(0.05, 0.4);
    const dh = h * rng.uniform(0.05, 0.4);
    // Mostly inside; some straddle the edge so their IoU falls between thresholds.
    const dx = x + rng.uniform(-0.3 * dw, w - 0.7 * dw);
    const dy = y + rng.uniform(-0.3 * dh, h - 0.7 * dh);
    b.addDet(ann.image_id, ann.category_id, [b.coordinate(dx), b.coordinate(dy), b.coordinate(dw), b.coordinate(dh)], b.score(0.05, 1));
  }
}

/** An ordinary image: objects of a few categories, crowd regions, duplicate GTs, edge-case detections. */
function ordinaryImage(
  b: Builder,
  rng: Rng,
  rates: Rates,
  image: SyntheticImage,
  gtCategories: readonly number[],
  maxObjects: number,
  otherCategory: () => number,
): void {
  const objects = rng.int(1, maxObjects);
  const categories = gtCategories.slice(0, rng.int(1, Math.min(3, gtCategories.length)));
  for (let i = 0; i < objects; i++) {
    const categoryId = rng.pick(categories);
    if (rng.chance(0.08)) {
      atThresholdPair(b, rng, image, categoryId);
      continue;
    }
    const crowd = rng.chance(rates.crowd);
    let bbox = b.randomBox(image);
    if (crowd) bbox = [bbox[0], bbox[1], b.coordinate(bbox[2] * 2 + 20), b.coordinate(bbox[3] * 2 + 20)];
    const ann = b.addGt(image, categoryId, bbox, crowd ? b.coordinate(bbox[2] * bbox[3] * 0.7) : b.gtArea(bbox), crowd);
    if (crowd) {
      detectInsideCrowd(b, rng, ann);
      continue;
    }
    if (rng.chance(0.05)) {
      b.addGt(image, categoryId, [...ann.bbox], ann.area, false);
      b.counts.gt_duplicate_boxes++;
    }
    detectObject(b, rng, rates, ann, otherCategory);
  }
  let fps = Math.floor(rates.falsePositives + rng.next());
  while (fps-- > 0) b.addDet(image.id, rng.pick(categories), b.randomBox(image), b.score(0, 0.6));
  if (rng.chance(0.3)) detectAreaBoundary(b, rng, image, rng.pick(categories));
}

/** One (image, category) with 101 to 180 detections: the maxDets=100 cut happens here. */
function crowdedImage(b: Builder, rng: Rng, image: SyntheticImage, categoryId: number): void {
  const objects: SyntheticAnnotation[] = [];
  for (let i = rng.int(5, 30); i > 0; i--) {
    const bbox = b.randomBox(image);
    objects.push(b.addGt(image, categoryId, bbox, b.gtArea(bbox), rng.chance(0.05)));
  }
  const n = rng.int(101, 180);
  const scores = Array.from({ length: n }, () => b.score(0, 1));
  // Places 95 to 106 (by score) get one score: the stable sort's order decides which make the cut.
  const ranked = [...scores].sort((x, y) => y - x);
  const tie = ranked[99]!;
  const high = ranked[94]!;
  const low = ranked[Math.min(105, n - 1)]!;
  for (let i = 0; i < n; i++) {
    const bbox = rng.chance(0.6) ? b.jittered(rng.pick(objects).bbox, 0.15) : b.randomBox(image);
    const score = scores[i]!;
    b.addDet(image.id, categoryId, bbox, score <= high && score >= low ? tie : score);
    b.counts.detections_in_crowded_cell++;
  }
}

/**
 * Generates one dataset. Image and category ids are sparse and listed in random order; detection
 * order is random too (it decides score ties), and every detection's image is in the instances file.
 */
export function syntheticCoco(options: SyntheticOptions): SyntheticCase {
  const { seed, images: numImages, categories: numCategories } = options;
  const maxObjects = options.maxObjectsPerImage ?? 8;
  if (!Number.isInteger(numImages) || numImages < 4) throw new Error(`syntheticCoco: images must be an integer >= 4, got ${numImages}`);
  if (!Number.isInteger(numCategories) || numCategories < 2)
    throw new Error(`syntheticCoco: categories must be an integer >= 2, got ${numCategories}`);
  if (!Number.isInteger(maxObjects) || maxObjects < 1)
    throw new Error(`syntheticCoco: maxObjectsPerImage must be an integer >= 1, got ${maxObjects}`);

  const rng = new Rng(seed);
  const rates = drawRates(rng);
  const b = new Builder(rng, rates);

  const categoryIds = rng.distinct(numCategories, 1, 3 * numCategories + 10);
  const maxCategory = Math.max(...categoryIds);
  const withoutGt = categoryIds[0]!;
  const gtCategories = categoryIds.slice(1);
  const unknownCategory = (): number => maxCategory + rng.int(1, 5);
  const otherCategory = (): number => {
    const u = rng.next();
    if (u < 0.3) {
      b.counts.detections_unknown_category++;
      return unknownCategory();
    }
    if (u < 0.5) {
      b.counts.detections_in_category_without_gt++;
      return withoutGt;
    }
    return rng.pick(gtCategories);
  };

  const imageIds = rng.distinct(numImages, 1, 10 * numImages);
  imageIds.forEach((id, i) => {
    const image = b.addImage(id);
    const order = rng.shuffle([...gtCategories]);
    if (i === 0) {
      b.counts.images_empty++;
    } else if (i === 1) {
      // Detections but no GT: false positives only, in known and unknown categories.
      b.counts.images_without_gt++;
      for (let n = rng.int(1, 6); n > 0; n--) b.addDet(id, otherCategory(), b.randomBox(image), b.score(0, 1));
      b.addDet(id, rng.pick(gtCategories), b.randomBox(image), b.score(0, 1));
      b.addDet(id, unknownCategory(), b.randomBox(image), b.score(0, 1));
      b.counts.detections_unknown_category++;
    } else if (i === 2) {
      crowdedImage(b, rng, image, order[0]!);
    } else {
      ordinaryImage(b, rng, rates, image, order, maxObjects, otherCategory);
    }
  });

  const categories = rng.shuffle([...categoryIds]).map((id) => ({ id, name: `category-${id}`, supercategory: 'synthetic' }));
  return {
    gt: { images: rng.shuffle(b.images), annotations: rng.shuffle(b.annotations), categories },
    dt: rng.shuffle(b.dt),
    counts: b.counts,
  };
}
