/**
 * A model directory (docs/model-format.md): reads and validates model.json, resolves and verifies
 * the two graphs. Every problem is a DetectError('MODEL_INVALID') that names the file and the field.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { checkNumber, describeJson, invalidParameterMessage, is, type NumberRule } from '../common/validate';
import { DetectError } from './errors';

/** The default model: `models/shapes-cpwc-r50-fpn` in the package root. */
export const DEFAULT_MODEL_DIR = path.resolve(__dirname, '..', '..', 'models', 'shapes-cpwc-r50-fpn');

export const MODEL_FORMAT = 'cpwc-detect-model';
export const MODEL_FORMAT_VERSION = 1;

export interface GraphTensorSpec {
  name: string;
  shape: ReadonlyArray<number | string>;
  dtype: string;
}

export interface GraphSpec {
  file: string;
  sha256: string;
  opset?: number;
  inputs?: GraphTensorSpec[];
  outputs?: GraphTensorSpec[];
}

export interface RpnLevelSpec {
  name: string;
  stride: number;
  anchor_sizes: number[];
  aspect_ratios: number[];
}

/** model.json (format_version 1) as parsed and validated; field names as in the file. */
export interface ModelManifest {
  format: string;
  format_version: number;
  name: string;
  architecture: string;
  width?: number;
  context?: string;
  parameters?: number;
  /** Index = class_id; 0 is background. */
  classes: string[];
  transform: {
    min_size: number;
    max_size: number;
    image_mean: [number, number, number];
    image_std: [number, number, number];
    size_divisible: number;
    resize: string;
  };
  coordinates: { box_format: string; pixel_convention?: string; roi_align?: Record<string, unknown> };
  box_coder: { bbox_xform_clip: number };
  rpn: {
    levels: RpnLevelSpec[];
    num_anchors_per_location: number;
    pre_nms_top_n: number;
    post_nms_top_n: number;
    nms_thresh: number;
    score_thresh: number;
    min_size: number;
    box_coder_weights: [number, number, number, number];
  };
  roi_heads: {
    featmap_names: string[];
    level_mapper: { k_min: number; k_max: number; canonical_scale: number; canonical_level: number; eps: number } | null;
    score_thresh: number;
    nms_thresh: number;
    detections_per_img: number;
    min_size: number;
    box_coder_weights: [number, number, number, number];
  };
  graphs: { backbone_rpn: GraphSpec; box_head: GraphSpec };
  /** The graphs' arithmetic: `"fp32"` when model.json omits it; `"int8"` for `npm run quantize` twins. */
  precision: ModelPrecision;
  /** int8 only: how the twin was calibrated and checked (informational; docs/model-format.md). */
  calibration?: Record<string, unknown>;
  provenance?: Record<string, unknown>;
}

export const MODEL_PRECISIONS = ['fp32', 'int8'] as const;
export type ModelPrecision = (typeof MODEL_PRECISIONS)[number];

/**
 * An int8 twin written with `--speed-only` (a benchmark of random weights): its detections were
 * never checked against the fp32 model, so they mean nothing. Servers warn when they load one.
 */
export function isSpeedOnly(manifest: Pick<ModelManifest, 'calibration'>): boolean {
  return manifest.calibration?.speed_only === true;
}

/** A model directory whose model.json is valid and whose graphs exist (and match their checksums when verified). */
export interface ModelDirectory {
  dir: string;
  manifest: ModelManifest;
  /** Absolute paths of graph A and graph B. */
  backboneRpnPath: string;
  boxHeadPath: string;
}

export interface LoadModelOptions {
  /** Check each graph's sha256 against model.json (default true; hashing a 170 MB graph takes ~0.5 s). */
  verifyChecksums?: boolean;
}

/**
 * Reads `<dir>/model.json`, validates it, and checks that both graphs exist inside `dir`
 * and match their sha256.
 *
 * @example
 * const model = await loadModelDirectory('models/shapes-cpwc-r50-fpn');
 * model.manifest.classes; // ['__background__', 'circle', ...]
 */
export async function loadModelDirectory(dir: string, options: LoadModelOptions = {}): Promise<ModelDirectory> {
  const absolute = path.resolve(dir);
  const manifestPath = path.join(absolute, 'model.json');
  let text: string;
  try {
    text = await fs.readFile(manifestPath, 'utf8');
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (cause as Error).message;
    throw new DetectError('MODEL_INVALID', `cannot read ${manifestPath}: ${reason}`, { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new DetectError('MODEL_INVALID', `${manifestPath} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  const manifest = validateManifest(json, manifestPath);
  const backboneRpnPath = graphPath(absolute, manifest.graphs.backbone_rpn, 'graphs.backbone_rpn', manifestPath);
  const boxHeadPath = graphPath(absolute, manifest.graphs.box_head, 'graphs.box_head', manifestPath);
  for (const [graph, file] of [
    [manifest.graphs.backbone_rpn, backboneRpnPath],
    [manifest.graphs.box_head, boxHeadPath],
  ] as const) {
    try {
      // caught below and reported as MODEL_INVALID
      if (!(await fs.stat(file)).isFile()) throw new Error('not a regular file');
    } catch (cause) {
      throw new DetectError('MODEL_INVALID', `graph ${file} (model.json) is missing or unreadable`, { cause });
    }
    if (options.verifyChecksums ?? true) {
      const actual = await sha256File(file);
      if (actual !== graph.sha256.toLowerCase()) {
        throw new DetectError(
          'MODEL_INVALID',
          `graph ${file} has sha256 ${actual}, model.json says ${graph.sha256}: the file is corrupt or from another export`,
        );
      }
    }
  }
  return { dir: absolute, manifest, backboneRpnPath, boxHeadPath };
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

function graphPath(dir: string, graph: GraphSpec, field: string, manifestPath: string): string {
  const file = path.resolve(dir, graph.file);
  if (path.relative(dir, file).startsWith('..') || path.isAbsolute(path.relative(dir, file))) {
    throw invalid(manifestPath, `${field}.file`, 'a file inside the model directory', graph.file);
  }
  return file;
}

// ---------------------------------------------------------------------------------------- validation

function invalid(manifestPath: string, field: string, expected: string, got: unknown): DetectError {
  return new DetectError('MODEL_INVALID', `${manifestPath}: ${invalidParameterMessage(field, expected, got, describeJson)}`);
}

/** Field readers bound to one file, so every error names it. */
class Fields {
  constructor(readonly file: string) {}

  object(value: unknown, field: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(this.file, field, 'an object', value);
    return value as Record<string, unknown>;
  }

  string(value: unknown, field: string): string {
    if (typeof value !== 'string' || value.length === 0) throw invalid(this.file, field, 'a non-empty string', value);
    return value;
  }

  number(value: unknown, field: string, rule: NumberRule = {}): number {
    const problem = checkNumber(field, value, rule, describeJson);
    if (problem !== undefined) throw new DetectError('MODEL_INVALID', `${this.file}: ${problem}`);
    return value as number;
  }

  numbers(value: unknown, field: string, length?: number, check: NumberRule = {}): number[] {
    if (!Array.isArray(value) || value.length === 0 || (length !== undefined && value.length !== length)) {
      throw invalid(this.file, field, length === undefined ? 'a non-empty array of numbers' : `an array of ${length} numbers`, value);
    }
    return value.map((v, i) => this.number(v, `${field}[${i}]`, check));
  }

  strings(value: unknown, field: string): string[] {
    if (!Array.isArray(value) || value.length === 0) throw invalid(this.file, field, 'a non-empty array of strings', value);
    return value.map((v, i) => this.string(v, `${field}[${i}]`));
  }

  graph(value: unknown, field: string): GraphSpec {
    const g = this.object(value, field);
    const file = this.string(g.file, `${field}.file`);
    const sha256 = this.string(g.sha256, `${field}.sha256`);
    if (!/^[0-9a-fA-F]{64}$/.test(sha256)) throw invalid(this.file, `${field}.sha256`, '64 hexadecimal digits', sha256);
    return { ...(g as unknown as GraphSpec), file, sha256 };
  }
}

/** Validates parsed model.json; throws MODEL_INVALID naming the first bad field. */
export function validateManifest(json: unknown, file = 'model.json'): ModelManifest {
  const f = new Fields(file);
  const root = f.object(json, '(root)');
  if (root.format !== MODEL_FORMAT) throw invalid(file, 'format', `"${MODEL_FORMAT}"`, root.format);
  if (root.format_version !== MODEL_FORMAT_VERSION)
    throw invalid(file, 'format_version', String(MODEL_FORMAT_VERSION), root.format_version);
  const name = f.string(root.name, 'name');
  const architecture = f.string(root.architecture, 'architecture');
  const classes = f.strings(root.classes, 'classes');
  if (classes.length < 2) throw invalid(file, 'classes', 'background plus at least one class', classes);

  const t = f.object(root.transform, 'transform');
  const resize = f.string(t.resize, 'transform.resize');
  if (!/bilinear/.test(resize) || !/align_corners=false/.test(resize)) {
    throw invalid(file, 'transform.resize', 'bilinear with align_corners=false (the only resize this pipeline reproduces)', resize);
  }
  const transform: ModelManifest['transform'] = {
    min_size: f.number(t.min_size, 'transform.min_size', { integer: true, greaterThan: 0 }),
    max_size: f.number(t.max_size, 'transform.max_size', { integer: true, greaterThan: 0 }),
    image_mean: f.numbers(t.image_mean, 'transform.image_mean', 3) as [number, number, number],
    image_std: f.numbers(t.image_std, 'transform.image_std', 3, { greaterThan: 0 }) as [number, number, number],
    size_divisible: f.number(t.size_divisible, 'transform.size_divisible', { integer: true, greaterThan: 0 }),
    resize,
  };

  const coordinates = f.object(root.coordinates, 'coordinates');
  if (coordinates.box_format !== 'xyxy') throw invalid(file, 'coordinates.box_format', '"xyxy"', coordinates.box_format);
  const boxCoder = f.object(root.box_coder, 'box_coder');
  const bboxXformClip = f.number(boxCoder.bbox_xform_clip, 'box_coder.bbox_xform_clip', { greaterThan: 0 });

  const r = f.object(root.rpn, 'rpn');
  if (!Array.isArray(r.levels) || r.levels.length === 0) throw invalid(file, 'rpn.levels', 'a non-empty array', r.levels);
  const levels = r.levels.map((value: unknown, i: number): RpnLevelSpec => {
    const l = f.object(value, `rpn.levels[${i}]`);
    return {
      name: f.string(l.name, `rpn.levels[${i}].name`),
      stride: f.number(l.stride, `rpn.levels[${i}].stride`, { integer: true, greaterThan: 0 }),
      anchor_sizes: f.numbers(l.anchor_sizes, `rpn.levels[${i}].anchor_sizes`, undefined, { greaterThan: 0 }),
      aspect_ratios: f.numbers(l.aspect_ratios, `rpn.levels[${i}].aspect_ratios`, undefined, { greaterThan: 0 }),
    };
  });
  const anchorsPerLocation = f.number(r.num_anchors_per_location, 'rpn.num_anchors_per_location', { integer: true, greaterThan: 0 });
  levels.forEach((l, i) => {
    if (l.anchor_sizes.length * l.aspect_ratios.length !== anchorsPerLocation) {
      throw invalid(file, `rpn.levels[${i}]`, `anchor_sizes x aspect_ratios = num_anchors_per_location (${anchorsPerLocation})`, l);
    }
  });
  const rpn: ModelManifest['rpn'] = {
    levels,
    num_anchors_per_location: anchorsPerLocation,
    pre_nms_top_n: f.number(r.pre_nms_top_n, 'rpn.pre_nms_top_n', { integer: true, greaterThan: 0 }),
    post_nms_top_n: f.number(r.post_nms_top_n, 'rpn.post_nms_top_n', { integer: true, greaterThan: 0 }),
    nms_thresh: f.number(r.nms_thresh, 'rpn.nms_thresh', { min: 0, max: 1 }),
    score_thresh: f.number(r.score_thresh, 'rpn.score_thresh', { min: 0, max: 1 }),
    min_size: f.number(r.min_size, 'rpn.min_size', { min: 0 }),
    box_coder_weights: f.numbers(r.box_coder_weights, 'rpn.box_coder_weights', 4, { greaterThan: 0 }) as [number, number, number, number],
  };

  const h = f.object(root.roi_heads, 'roi_heads');
  const featmapNames = f.strings(h.featmap_names, 'roi_heads.featmap_names');
  let levelMapper: ModelManifest['roi_heads']['level_mapper'] = null;
  if (h.level_mapper !== null && h.level_mapper !== undefined) {
    const m = f.object(h.level_mapper, 'roi_heads.level_mapper');
    levelMapper = {
      k_min: f.number(m.k_min, 'roi_heads.level_mapper.k_min', { integer: true }),
      k_max: f.number(m.k_max, 'roi_heads.level_mapper.k_max', { integer: true }),
      canonical_scale: f.number(m.canonical_scale, 'roi_heads.level_mapper.canonical_scale', { greaterThan: 0 }),
      canonical_level: f.number(m.canonical_level, 'roi_heads.level_mapper.canonical_level'),
      eps: f.number(m.eps, 'roi_heads.level_mapper.eps', { min: 0 }),
    };
    if (levelMapper.k_max - levelMapper.k_min + 1 !== featmapNames.length) {
      throw invalid(
        file,
        'roi_heads.level_mapper',
        `k_max - k_min + 1 = ${featmapNames.length} (one level per featmap_names entry)`,
        h.level_mapper,
      );
    }
  } else if (featmapNames.length > 1) {
    throw invalid(file, 'roi_heads.level_mapper', 'an object when there are several featmap_names', h.level_mapper);
  }
  const roiHeads: ModelManifest['roi_heads'] = {
    featmap_names: featmapNames,
    level_mapper: levelMapper,
    score_thresh: f.number(h.score_thresh, 'roi_heads.score_thresh', { min: 0, max: 1 }),
    nms_thresh: f.number(h.nms_thresh, 'roi_heads.nms_thresh', { min: 0, max: 1 }),
    detections_per_img: f.number(h.detections_per_img, 'roi_heads.detections_per_img', { integer: true, greaterThan: 0 }),
    min_size: f.number(h.min_size, 'roi_heads.min_size', { min: 0 }),
    box_coder_weights: f.numbers(h.box_coder_weights, 'roi_heads.box_coder_weights', 4, { greaterThan: 0 }) as [
      number,
      number,
      number,
      number,
    ],
  };

  const g = f.object(root.graphs, 'graphs');
  const graphs = { backbone_rpn: f.graph(g.backbone_rpn, 'graphs.backbone_rpn'), box_head: f.graph(g.box_head, 'graphs.box_head') };
  const precision = root.precision ?? 'fp32';
  if (!is.inArray(precision, MODEL_PRECISIONS)) throw invalid(file, 'precision', `one of ${MODEL_PRECISIONS.join(', ')}`, precision);
  const calibration = root.calibration === undefined ? undefined : f.object(root.calibration, 'calibration');

  return {
    ...(root as unknown as ModelManifest),
    name,
    architecture,
    classes,
    transform,
    coordinates: coordinates as ModelManifest['coordinates'],
    box_coder: { bbox_xform_clip: bboxXformClip },
    rpn,
    roi_heads: roiHeads,
    graphs,
    precision,
    ...(calibration === undefined ? {} : { calibration }),
  };
}
