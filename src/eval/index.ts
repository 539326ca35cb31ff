/** COCO bbox mAP evaluation with pycocotools' exact numbers. */
export { evaluateDetections, type CocoEvaluation } from './cocoeval';
export { DetectionTable, loadDetectionsFile, type Detections } from './detections';
export { CocoEvalError, type CocoEvalErrorCode } from './errors';
export { countInputs, evaluateFiles, evaluateLoaded, type EvaluationRun } from './evaluate';
export { loadGroundTruthFile, parseGroundTruth, type GroundTruth } from './ground-truth';
export { DEFAULT_PARAMS, type EvalParams } from './params';
export { readResultsFile, type ResultsFormat } from './results-reader';
export { writeReport, type ReportCounts } from './report/report';
export { STAT_LABELS, summarize, type CategoryMetrics, type EvalSummary } from './summarize';
export { withoutImages } from './ground-truth';
export {
  runBatch,
  runShard,
  type BatchOptions,
  type BatchResult,
  type BatchSummary,
  type ShardOptions,
  type ShardSummary,
} from './batch/runner';
export { mapClassesToCategories, type CategoryMapping } from './batch/class-map';
