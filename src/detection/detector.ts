/**
 * The glue (torchvision's generalized_rcnn.py): bytes -> decoded image -> graph A input (+ the
 * geometry that maps back) -> graph A -> proposals -> graph B -> detections in original pixels.
 * Each stage is a module of its own; this file only calls them in order and times them.
 */
import { checkNumber, invalidParameterMessage } from '../common/validate';
import { AnchorGenerator } from './anchors';
import { resolveClasses } from './classes';
import { DetectError } from './errors';
import { parseExecutionProvider } from './execution-provider';
import { decodeImage, decodeImageResized, type RgbImage } from './image';
import { MAX_DETECTIONS_LIMIT } from './limits';
import { loadModelDirectory, DEFAULT_MODEL_DIR, type ModelManifest } from './model';
import { assignLevels, RoiHeadsPostprocessor, type LevelMapperConfig, type PostprocessOptions } from './roi-heads';
import { RegionProposalFilter, type RpnLevelOutput, rpnLevelGrid } from './rpn';
import { GraphSessions, type TensorData } from './session';
import { imageGeometry, resizeBoxes, transformImage, type ImageGeometry, type Size, type TransformConfig } from './transform';
import type { Detection, DetectionResult, DetectOptions, DetectorOptions, StageTimings } from './types';

/** Everything one run produced, including the intermediate results parity tests compare. */
export interface PipelineRun {
  geometry: ImageGeometry;
  /** RPN proposals `[N, 4]` in graph-input pixels, descending objectness. */
  proposals: Float32Array;
  detections: Detection[];
  /** Per-stage milliseconds (decode is 0: the image came decoded). */
  timings: StageTimings;
}

export class Detector {
  private readonly transformConfig: TransformConfig;
  private readonly proposalFilter: RegionProposalFilter;
  private readonly roiHeads: RoiHeadsPostprocessor;
  private readonly levelMapper: LevelMapperConfig | null;
  private readonly rpnFetch: string[];
  private readonly inFlight = new Set<Promise<unknown>>();
  private nextRequest = 1;
  private closed = false;

  private constructor(
    /** model.json, parsed and validated. */
    readonly model: ModelManifest,
    /** Absolute path of the model directory. */
    readonly modelDir: string,
    private readonly sessions: GraphSessions,
    private readonly maxPixels: number | undefined,
    /** Resize on decode (approximate; DetectorOptions.fastResize). */
    readonly fastResize: boolean,
  ) {
    const { transform, rpn, roi_heads: heads, box_coder: boxCoder } = model;
    this.transformConfig = {
      minSize: transform.min_size,
      maxSize: transform.max_size,
      imageMean: transform.image_mean,
      imageStd: transform.image_std,
      sizeDivisible: transform.size_divisible,
    };
    const anchors = new AnchorGenerator(rpn.levels.map((l) => ({ sizes: l.anchor_sizes, aspectRatios: l.aspect_ratios })));
    this.proposalFilter = new RegionProposalFilter(anchors, {
      preNmsTopN: rpn.pre_nms_top_n,
      postNmsTopN: rpn.post_nms_top_n,
      nmsThresh: rpn.nms_thresh,
      scoreThresh: rpn.score_thresh,
      minSize: rpn.min_size,
      boxCoderWeights: rpn.box_coder_weights,
      bboxXformClip: boxCoder.bbox_xform_clip,
    });
    this.roiHeads = new RoiHeadsPostprocessor({
      numClasses: model.classes.length,
      scoreThresh: heads.score_thresh,
      nmsThresh: heads.nms_thresh,
      detectionsPerImg: heads.detections_per_img,
      minSize: heads.min_size,
      boxCoderWeights: heads.box_coder_weights,
      bboxXformClip: boxCoder.bbox_xform_clip,
    });
    const mapper = heads.level_mapper;
    this.levelMapper =
      mapper === null
        ? null
        : {
            kMin: mapper.k_min,
            kMax: mapper.k_max,
            canonicalScale: mapper.canonical_scale,
            canonicalLevel: mapper.canonical_level,
            eps: mapper.eps,
          };
    this.rpnFetch = rpn.levels.flatMap((l) => [`objectness_${l.name}`, `bbox_deltas_${l.name}`]);
  }

  /**
   * Loads a model directory (docs/model-format.md): validates model.json, verifies the graphs'
   * checksums and creates one ONNX Runtime session per graph.
   *
   * @example
   * const detector = await Detector.load('models/shapes-cpwc-r50-fpn', { intraOpThreads: 2 });
   * const { detections } = await detector.detect(await fs.promises.readFile('shapes.jpg'), { scoreThreshold: 0.5 });
   * await detector.close();
   */
  static async load(modelDir: string = DEFAULT_MODEL_DIR, options: DetectorOptions = {}): Promise<Detector> {
    for (const name of ['intraOpThreads', 'maxPixels'] as const) {
      const problem = options[name] === undefined ? undefined : checkNumber(name, options[name], { integer: true, min: 1 });
      if (problem !== undefined) throw new DetectError('INVALID_OPTION', problem);
    }
    const executionProvider = options.executionProvider === undefined ? undefined : parseExecutionProvider(options.executionProvider);
    const directory = await loadModelDirectory(modelDir, { verifyChecksums: options.verifyChecksums });
    const sessions = await GraphSessions.create(directory.backboneRpnPath, directory.boxHeadPath, {
      ...options.session,
      intraOpThreads: options.intraOpThreads,
      executionProvider,
    });
    try {
      checkGraphSignatures(directory.manifest, sessions);
    } catch (error) {
      await sessions.close();
      throw error;
    }
    return new Detector(directory.manifest, directory.dir, sessions, options.maxPixels, options.fastResize === true);
  }

  /**
   * Detects objects in an encoded image, in any format of FORMATS (src/detection/formats.ts;
   * SUPPORTED_FORMATS_TEXT names them), decided from the bytes.
   * Boxes are in the original image's pixels after EXIF orientation. Safe to call concurrently.
   */
  async detect(image: Uint8Array, options: DetectOptions = {}): Promise<DetectionResult> {
    return this.track(async () => {
      const started = performance.now();
      const postprocess = this.postprocessOptions(options);
      throwIfAborted(options.signal);
      const { image: decoded, original } = this.fastResize
        ? await decodeImageResized(image, (size) => imageGeometry(size, this.transformConfig).resized, { maxPixels: this.maxPixels })
        : { image: await decodeImage(image, { maxPixels: this.maxPixels }), original: undefined };
      const decodeMs = performance.now() - started;
      const run = await this.runPipeline(decoded, postprocess, options.signal, original);
      return {
        width: run.geometry.original.width,
        height: run.geometry.original.height,
        detections: run.detections,
        timings_ms: { ...run.timings, decode: decodeMs, total: performance.now() - started },
      };
    });
  }

  /**
   * The pipeline on an already decoded image, returning its intermediate results as well.
   * `detect` is `decodeImage` + this.
   */
  async run(image: RgbImage, options: DetectOptions = {}): Promise<PipelineRun> {
    return this.track(() => this.runPipeline(image, this.postprocessOptions(options), options.signal));
  }

  /** Releases both sessions once the calls in flight have finished; later calls fail with DETECTOR_CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.inFlight]);
    await this.sessions.close();
  }

  private async track<T>(work: () => Promise<T>): Promise<T> {
    if (this.closed) throw new DetectError('DETECTOR_CLOSED', 'the detector is closed');
    const promise = work();
    this.inFlight.add(promise);
    try {
      return await promise;
    } finally {
      this.inFlight.delete(promise);
    }
  }

  private async runPipeline(
    image: RgbImage,
    postprocess: PostprocessOptions,
    signal: AbortSignal | undefined,
    original?: Size,
  ): Promise<PipelineRun> {
    throwIfAborted(signal);
    const started = performance.now();
    const request = this.nextRequest++;
    const { tensor, geometry } = transformImage(image, this.transformConfig, original);
    const transformMs = performance.now() - started;
    throwIfAborted(signal);

    let mark = performance.now();
    const graphA = await this.sessions.runBackboneRpn(
      request,
      { data: tensor, dims: [1, 3, geometry.padded.height, geometry.padded.width] },
      this.rpnFetch,
    );
    const backboneMs = performance.now() - mark - graphA.queuedMs;
    let graphBStarted = false;
    try {
      throwIfAborted(signal);
      mark = performance.now();
      const levels: RpnLevelOutput[] = this.model.rpn.levels.map((level) => {
        const objectness = output(graphA.outputs, `objectness_${level.name}`);
        return {
          objectness: objectness.data,
          bboxDeltas: output(graphA.outputs, `bbox_deltas_${level.name}`).data,
          ...rpnLevelGrid(objectness.dims, `objectness_${level.name}`),
        };
      });
      const proposals = this.proposalFilter.filterProposals(levels, geometry.padded, geometry.resized);
      const featmapNames = this.model.roi_heads.featmap_names;
      const assignment = assignLevels(proposals.boxes, featmapNames.length, this.levelMapper);
      const rois: Record<string, TensorData> = {};
      featmapNames.forEach((name, l) => {
        const levelRois = assignment.rois[l]!; // assignLevels returns one array per level, featmapNames.length of them
        rois[`rois_${name}`] = { data: levelRois, dims: [levelRois.length / 4, 4] };
      });
      const rpnMs = performance.now() - mark;

      mark = performance.now();
      graphBStarted = true;
      const graphB = await this.sessions.runBoxHead(request, rois);
      const boxHeadMs = performance.now() - mark - graphB.queuedMs;
      throwIfAborted(signal);

      mark = performance.now();
      const numClasses = this.model.classes.length;
      const classLogits = inProposalOrder(output(graphB.outputs, 'class_logits').data, assignment.proposalOfRow, numClasses);
      const boxRegression = inProposalOrder(output(graphB.outputs, 'box_regression').data, assignment.proposalOfRow, numClasses * 4);
      const found = this.roiHeads.postprocess(classLogits, boxRegression, proposals.boxes, geometry.resized, postprocess);
      resizeBoxes(found.boxes, geometry.resized, geometry.original);
      const detections: Detection[] = [];
      // postprocess packs labels and scores one per detection and boxes four per detection (PackedDetections),
      // each label a column of the [rows, classes.length] logits, so every index below is in range
      for (let i = 0; i < found.scores.length; i++) {
        const classId = found.labels[i]!;
        detections.push({
          label: this.model.classes[classId]!,
          class_id: classId,
          score: found.scores[i]!,
          box: { xmin: found.boxes[i * 4]!, ymin: found.boxes[i * 4 + 1]!, xmax: found.boxes[i * 4 + 2]!, ymax: found.boxes[i * 4 + 3]! },
        });
      }
      const postprocessMs = performance.now() - mark;
      return {
        geometry,
        proposals: proposals.boxes,
        detections,
        timings: {
          decode: 0,
          transform: transformMs,
          backbone_rpn: backboneMs,
          rpn_postprocess: rpnMs,
          box_head: boxHeadMs,
          postprocess: postprocessMs,
          total: performance.now() - started,
        },
      };
    } finally {
      // Graph B consumes the kept feature maps; a request that stops before it must free them.
      if (!graphBStarted) await this.sessions.release(request).catch(() => undefined);
    }
  }

  /** Validates per-request options against the model; INVALID_OPTION names the bad one. */
  private postprocessOptions(options: DetectOptions): PostprocessOptions {
    const { scoreThreshold, maxDetections, classes } = options;
    const result: PostprocessOptions = {};
    if (scoreThreshold !== undefined) {
      const problem = checkNumber('scoreThreshold', scoreThreshold, { min: 0, max: 1 });
      if (problem !== undefined) throw new DetectError('INVALID_OPTION', problem);
      result.scoreThreshold = scoreThreshold;
    }
    if (maxDetections !== undefined) {
      const problem = checkNumber('maxDetections', maxDetections, { integer: true, min: 1, max: MAX_DETECTIONS_LIMIT });
      if (problem !== undefined) throw new DetectError('INVALID_OPTION', problem);
      result.maxDetections = maxDetections;
    }
    if (classes !== undefined) {
      if (!Array.isArray(classes)) {
        throw new DetectError('INVALID_OPTION', invalidParameterMessage('classes', 'an array of labels or class ids', classes));
      }
      const resolved = resolveClasses(this.model.classes, classes);
      if (!resolved.ok) throw new DetectError('INVALID_OPTION', `classes: ${resolved.message}`);
      result.classIds = new Set(resolved.value);
    }
    return result;
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    throw new DetectError('ABORTED', `the request was aborted${reason instanceof Error ? `: ${reason.message}` : ''}`, { cause: reason });
  }
}

function output(outputs: Record<string, TensorData>, name: string): TensorData {
  const tensor = outputs[name];
  // an invariant, not input: checkGraphSignatures verified at load that the graphs have these outputs
  if (tensor === undefined) throw new Error(`graph output ${name} is missing`);
  return tensor;
}

/** Rows of a graph B output (level order) put back in proposal order. */
function inProposalOrder(rows: Float32Array, proposalOfRow: Int32Array, rowLength: number): Float32Array {
  if (rows.length !== proposalOfRow.length * rowLength) {
    throw new DetectError(
      'MODEL_INVALID',
      `box head output has ${rows.length} values, expected ${proposalOfRow.length} rows of ${rowLength}`,
    );
  }
  const ordered = new Float32Array(rows.length);
  proposalOfRow.forEach((proposal, r) => {
    ordered.set(rows.subarray(r * rowLength, (r + 1) * rowLength), proposal * rowLength);
  });
  return ordered;
}

/** The graphs must have the inputs and outputs docs/model-format.md promises for this model.json. */
function checkGraphSignatures(model: ModelManifest, sessions: GraphSessions): void {
  const a = sessions.graphs.backbone_rpn;
  const b = sessions.graphs.box_head;
  const expectA = [
    ...model.roi_heads.featmap_names.map((n) => `feature_${n}`),
    ...model.rpn.levels.flatMap((l) => [`objectness_${l.name}`, `bbox_deltas_${l.name}`]),
  ];
  const expectB = model.roi_heads.featmap_names.flatMap((n) => [`feature_${n}`, `rois_${n}`]);
  const missing = [
    ...(a.inputNames.includes('image') && a.inputNames.length === 1 ? [] : ['backbone_rpn input "image" (the only input)']),
    ...expectA.filter((n) => !a.outputNames.includes(n)).map((n) => `backbone_rpn output ${n}`),
    ...expectB.filter((n) => !b.inputNames.includes(n)).map((n) => `box_head input ${n}`),
    ...b.inputNames.filter((n) => !expectB.includes(n)).map((n) => `box_head input ${n} (unexpected)`),
    ...['class_logits', 'box_regression'].filter((n) => !b.outputNames.includes(n)).map((n) => `box_head output ${n}`),
  ];
  if (missing.length > 0) {
    throw new DetectError('MODEL_INVALID', `the graphs do not match model.json: ${missing.join(', ')}`);
  }
}
