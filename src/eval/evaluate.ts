/** The whole results-file evaluation as one call: load, validate, evaluate, summarize. */
import { evaluateDetections, type CocoEvaluation } from './cocoeval';
import { loadDetectionsFile, type Detections } from './detections';
import { loadGroundTruthFile, type GroundTruth } from './ground-truth';
import type { ReportCounts } from './report/report';
import { summarize, type EvalSummary } from './summarize';

export interface EvaluationRun {
  gt: GroundTruth;
  detections: Detections;
  evaluation: CocoEvaluation;
  summary: EvalSummary;
  counts: ReportCounts;
}

export function countInputs(gt: GroundTruth, detections: Detections, evaluation: CocoEvaluation): ReportCounts {
  let crowd = 0;
  for (let i = 0; i < gt.annotations.count; i++) crowd += gt.annotations.crowd[i]!;
  const { K, A } = evaluation.dims;
  const all = evaluation.params.areaLabels.indexOf('all');
  let withGt = 0;
  let scored = 0;
  for (let k = 0; k < K; k++) {
    if (evaluation.gtCount[k * A + all]! > 0) withGt++;
    scored += evaluation.detectionCount[k]!;
  }
  return {
    images: gt.images.length,
    gt_annotations: gt.annotations.count,
    gt_crowd: crowd,
    categories: gt.categoryIds.length,
    categories_with_gt: withGt,
    detections_read: detections.count,
    detections_scored: scored,
    detections_unknown_category: detections.unknownCategory,
    gt_annotations_skipped: gt.skippedAnnotations.unknownImage + gt.skippedAnnotations.unknownCategory,
  };
}

export function evaluateLoaded(gt: GroundTruth, detections: Detections): EvaluationRun {
  const evaluation = evaluateDetections(gt, detections);
  const summary = summarize(evaluation);
  return { gt, detections, evaluation, summary, counts: countInputs(gt, detections, evaluation) };
}

/**
 * Scores a COCO results file (JSON array or JSON Lines) against a COCO instances file.
 *
 * @example
 *   const run = evaluateFiles('instances_val2017.json', 'detections.jsonl');
 *   run.summary.summary_text.forEach((line) => console.log(line));
 */
export function evaluateFiles(annotationsFile: string, detectionsFile: string): EvaluationRun {
  const gt = loadGroundTruthFile(annotationsFile);
  return evaluateLoaded(gt, loadDetectionsFile(detectionsFile, gt));
}
