/**
 * Compares the TypeScript pipeline with torchvision's own outputs recorded in a model directory's
 * reference.json (docs/model-format.md), stage by stage, and says which stage differs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Detector } from '../../src/detection/detector';
import { decodeImage } from '../../src/detection/image';
import type { Detection } from '../../src/detection/types';

export const MIN_IOU = 0.99;
export const MAX_SCORE_DIFF = 1e-3;
/** For slivers (a side of a few hundredths of a pixel) IoU is ill-conditioned; equal corners within this also count. */
export const MAX_CORNER_DIFF = 0.01;

/** The similarity used for matching: IoU, or 1 when every corner agrees within MAX_CORNER_DIFF. */
export function twinScore(a: readonly number[], b: readonly number[]): number {
  return a.every((v, i) => Math.abs(v - b[i]!) <= MAX_CORNER_DIFF) ? Math.max(iou(a, b), 1 - 1e-12) : iou(a, b);
}

export interface ReferenceDetection {
  label: string;
  class_id: number;
  score: number;
  box: { xmin: number; ymin: number; xmax: number; ymax: number };
}

export interface ReferenceImage {
  file: string;
  width: number;
  height: number;
  resized: { width: number; height: number };
  proposals: number[][];
  detections: ReferenceDetection[];
}

export interface Reference {
  model: string;
  images: ReferenceImage[];
}

export function readReference(modelDir: string): Reference {
  return JSON.parse(fs.readFileSync(path.join(modelDir, 'reference.json'), 'utf8')) as Reference;
}

export function iou(a: readonly number[], b: readonly number[]): number {
  const w = Math.max(0, Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!));
  const h = Math.max(0, Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!));
  const inter = w * h;
  const union = (a[2]! - a[0]!) * (a[3]! - a[1]!) + (b[2]! - b[0]!) * (b[3]! - b[1]!) - inter;
  if (union <= 0) return a.every((v, i) => v === b[i]) ? 1 : 0;
  return inter / union;
}

const corners = (d: ReferenceDetection | Detection): number[] => [d.box.xmin, d.box.ymin, d.box.xmax, d.box.ymax];

export interface StageReport {
  stage: 'decode' | 'transform' | 'proposals' | 'detections';
  /** Reference items with a twin / all reference items. */
  matched: number;
  expected: number;
  /** Produced items (TypeScript side). */
  produced: number;
  /** 1 - smallest IoU among pairs matched by IoU. */
  maxIouGap: number;
  /** Pairs matched by corners (IoU < 0.99 on a sliver). */
  slivers: number;
  /** Largest |score difference| among matched pairs (detections only). */
  maxScoreDiff: number;
  /** Human-readable problems; empty when the stage agrees. */
  problems: string[];
}

export interface ImageReport {
  file: string;
  stages: StageReport[];
}

/**
 * Greedy matching: each reference proposal (in torchvision order) takes the unmatched TypeScript
 * proposal with the highest IoU. Proposal lists are cut at post_nms_top_n and ranked by objectness,
 * so a few proposals at the cut may legitimately differ: `allowedUnmatched` of them are tolerated.
 */
export function compareProposals(expected: number[][], produced: Float32Array, allowedUnmatched: number): StageReport {
  const count = produced.length / 4;
  const boxes = Array.from({ length: count }, (_, i) => Array.from(produced.subarray(i * 4, i * 4 + 4)));
  const taken = new Uint8Array(count);
  let matched = 0;
  let minIou = 1;
  let slivers = 0;
  const unmatched: string[] = [];
  for (const box of expected) {
    let best = -1;
    let bestIou = -1;
    for (let j = 0; j < count; j++) {
      if (taken[j]) continue;
      const v = twinScore(box, boxes[j]!);
      if (v > bestIou) {
        bestIou = v;
        best = j;
      }
    }
    if (best >= 0 && bestIou >= MIN_IOU) {
      taken[best] = 1;
      matched++;
      if (bestIou < 1 - 1e-9 || iou(box, boxes[best]!) >= MIN_IOU) minIou = Math.min(minIou, iou(box, boxes[best]!));
      else slivers++;
    } else {
      unmatched.push(`[${box.map((v) => v.toFixed(2)).join(', ')}] (best IoU ${bestIou.toFixed(4)})`);
    }
  }
  const problems: string[] = [];
  if (expected.length - matched > allowedUnmatched) {
    const missing = `${expected.length - matched} of ${expected.length} torchvision proposals have no twin with IoU >= ${MIN_IOU}`;
    problems.push(`${missing} (${allowedUnmatched} tolerated), e.g. ${unmatched.slice(0, 3).join('; ')}`);
  }
  if (Math.abs(count - expected.length) > allowedUnmatched) problems.push(`${count} proposals, torchvision has ${expected.length}`);
  return {
    stage: 'proposals',
    matched,
    expected: expected.length,
    produced: count,
    maxIouGap: 1 - minIou,
    maxScoreDiff: 0,
    slivers,
    problems,
  };
}

/**
 * Every torchvision detection must have a TypeScript twin (same label, IoU >= 0.99 or corners within 0.01 px,
 * |score diff| <= 1e-3)
 * and there must be no TypeScript detection without one. Exempt: detections whose score is within
 * 1e-3 of the score threshold, which float rounding may put on either side.
 */
export function compareDetections(expected: ReferenceDetection[], produced: Detection[], scoreThreshold: number): StageReport {
  const taken = new Uint8Array(produced.length);
  let matched = 0;
  let minIou = 1;
  let slivers = 0;
  let maxScoreDiff = 0;
  const problems: string[] = [];
  const nearThreshold = (score: number): boolean => Math.abs(score - scoreThreshold) <= MAX_SCORE_DIFF;
  for (const ref of expected) {
    let best = -1;
    let bestIou = -1;
    produced.forEach((d, j) => {
      if (taken[j] || d.class_id !== ref.class_id) return;
      const v = twinScore(corners(ref), corners(d));
      if (v > bestIou || (v === bestIou && best >= 0 && Math.abs(d.score - ref.score) < Math.abs(produced[best]!.score - ref.score))) {
        bestIou = v;
        best = j;
      }
    });
    const twin = best >= 0 ? produced[best] : undefined;
    if (twin !== undefined && bestIou >= MIN_IOU && Math.abs(twin.score - ref.score) <= MAX_SCORE_DIFF && twin.label === ref.label) {
      taken[best] = 1;
      matched++;
      const trueIou = iou(corners(ref), corners(twin));
      if (trueIou >= MIN_IOU) minIou = Math.min(minIou, trueIou);
      else slivers++;
      maxScoreDiff = Math.max(maxScoreDiff, Math.abs(twin.score - ref.score));
    } else if (!nearThreshold(ref.score)) {
      problems.push(
        `torchvision ${ref.label} ${ref.score.toFixed(4)} at [${corners(ref)
          .map((v) => v.toFixed(2))
          .join(', ')}] has no twin${twin ? ` (closest: ${twin.label} ${twin.score.toFixed(4)} IoU ${bestIou.toFixed(4)})` : ''}`,
      );
    }
  }
  produced.forEach((d, j) => {
    if (!taken[j] && !nearThreshold(d.score)) {
      problems.push(
        `extra detection ${d.label} ${d.score.toFixed(4)} at [${corners(d)
          .map((v) => v.toFixed(2))
          .join(', ')}]`,
      );
    }
  });
  return {
    stage: 'detections',
    matched,
    expected: expected.length,
    produced: produced.length,
    maxIouGap: 1 - minIou,
    maxScoreDiff,
    slivers,
    problems,
  };
}

/** Runs one reference image through the detector and compares every stage. */
export async function compareImage(detector: Detector, modelDir: string, image: ReferenceImage): Promise<ImageReport> {
  const bytes = fs.readFileSync(path.resolve(modelDir, image.file));
  const decoded = await decodeImage(bytes);
  const stages: StageReport[] = [];
  const sizeReport = (
    stage: 'decode' | 'transform',
    got: { width: number; height: number },
    want: { width: number; height: number },
  ): StageReport => ({
    stage,
    matched: got.width === want.width && got.height === want.height ? 1 : 0,
    expected: 1,
    produced: 1,
    maxIouGap: 0,
    maxScoreDiff: 0,
    slivers: 0,
    problems:
      got.width === want.width && got.height === want.height
        ? []
        : [`size ${got.width}x${got.height}, torchvision ${want.width}x${want.height}`],
  });
  stages.push(sizeReport('decode', decoded, image));
  const run = await detector.run(decoded);
  stages.push(sizeReport('transform', run.geometry.resized, image.resized));
  const postNmsTopN = detector.model.rpn.post_nms_top_n;
  const allowed = image.proposals.length >= postNmsTopN ? Math.ceil(0.01 * postNmsTopN) : 0;
  stages.push(compareProposals(image.proposals, run.proposals, allowed));
  stages.push(compareDetections(image.detections, run.detections, detector.model.roi_heads.score_thresh));
  return { file: image.file, stages };
}

/** One line per stage with a problem, naming the image and the stage; empty when everything agrees. */
export function describeProblems(reports: ImageReport[]): string[] {
  return reports.flatMap((r) => r.stages.flatMap((s) => s.problems.map((p) => `${r.file}: stage ${s.stage}: ${p}`)));
}
