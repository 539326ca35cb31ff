import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Detector } from '../../src/detection/detector';
import { DetectError } from '../../src/detection/errors';
import { DEFAULT_MODEL_DIR, isSpeedOnly, loadModelDirectory, validateManifest } from '../../src/detection/model';

/** A model.json as the export writes it (docs/model-format.md), for graphs with the given bytes. */
function manifest(graphA: Buffer, graphB: Buffer): Record<string, unknown> {
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  return {
    format: 'cpwc-detect-model',
    format_version: 1,
    name: 'unit',
    architecture: 'cpwc_r50_fpn',
    classes: ['__background__', 'circle', 'square'],
    transform: {
      min_size: 800,
      max_size: 1333,
      image_mean: [0.485, 0.456, 0.406],
      image_std: [0.229, 0.224, 0.225],
      size_divisible: 32,
      resize: 'bilinear, align_corners=false, antialias=false, recompute_scale_factor=true',
    },
    coordinates: { box_format: 'xyxy' },
    box_coder: { bbox_xform_clip: 4.135166556742356 },
    rpn: {
      levels: ['0', '1', '2', '3', 'pool'].map((name, i) => ({
        name,
        stride: 4 << i,
        anchor_sizes: [32 << i],
        aspect_ratios: [0.5, 1, 2],
      })),
      num_anchors_per_location: 3,
      pre_nms_top_n: 1000,
      post_nms_top_n: 1000,
      nms_thresh: 0.7,
      score_thresh: 0,
      min_size: 0.001,
      box_coder_weights: [1, 1, 1, 1],
    },
    roi_heads: {
      featmap_names: ['0', '1', '2', '3'],
      level_mapper: { k_min: 2, k_max: 5, canonical_scale: 224, canonical_level: 4, eps: 1e-6 },
      score_thresh: 0.05,
      nms_thresh: 0.5,
      detections_per_img: 100,
      min_size: 0.01,
      box_coder_weights: [10, 10, 5, 5],
    },
    graphs: { backbone_rpn: { file: 'backbone_rpn.onnx', sha256: sha(graphA) }, box_head: { file: 'box_head.onnx', sha256: sha(graphB) } },
  };
}

const created: string[] = [];
afterAll(() => {
  for (const dir of created) fs.rmSync(dir, { recursive: true, force: true });
});

function modelDir(
  edit: (m: Record<string, unknown>) => void = () => undefined,
  graphA = Buffer.from('graph A bytes'),
  graphB = Buffer.from('graph B bytes'),
): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cpwc-model-'));
  created.push(dir);
  fs.writeFileSync(path.join(dir, 'backbone_rpn.onnx'), graphA);
  fs.writeFileSync(path.join(dir, 'box_head.onnx'), graphB);
  const m = manifest(graphA, graphB);
  edit(m);
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(m));
  return dir;
}

async function modelError(dir: string): Promise<DetectError> {
  const error = await loadModelDirectory(dir).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DetectError);
  expect((error as DetectError).code).toBe('MODEL_INVALID');
  return error as DetectError;
}

/** model.json as the tests edit it: the sections they reach into, and any other field. */
interface Json {
  transform: Record<string, unknown>;
  rpn: Record<string, unknown>;
  roi_heads: Record<string, unknown>;
  graphs: Record<string, unknown>;
  [field: string]: unknown;
}

describe('loadModelDirectory', () => {
  it('accepts a valid directory and resolves the graph paths inside it', async () => {
    const dir = modelDir();
    const model = await loadModelDirectory(dir);
    expect(model.manifest.classes).toEqual(['__background__', 'circle', 'square']);
    expect(model.backboneRpnPath).toBe(path.join(dir, 'backbone_rpn.onnx'));
    expect(model.manifest.roi_heads.level_mapper).toEqual({ k_min: 2, k_max: 5, canonical_scale: 224, canonical_level: 4, eps: 1e-6 });
  });

  it.each([
    ['a missing model.json', (dir: string) => fs.rmSync(path.join(dir, 'model.json')), /model\.json: not found/],
    ['model.json that is not JSON', (dir: string) => fs.writeFileSync(path.join(dir, 'model.json'), '{"format": '), /not valid JSON/],
    ['a missing graph', (dir: string) => fs.rmSync(path.join(dir, 'box_head.onnx')), /box_head\.onnx \(model\.json\) is missing/],
    [
      'a graph that does not match its checksum',
      (dir: string) => fs.appendFileSync(path.join(dir, 'backbone_rpn.onnx'), 'x'),
      /has sha256 [0-9a-f]{64}, model\.json says/,
    ],
  ])('rejects %s with MODEL_INVALID', async (_, damage, message) => {
    const dir = modelDir();
    damage(dir);
    expect((await modelError(dir)).message).toMatch(message);
  });

  it.each([
    [
      'format',
      (m: Json) => {
        m.format = 'onnx' as unknown as Record<string, unknown>;
      },
      /format must be "cpwc-detect-model", got "onnx"/,
    ],
    [
      'format_version',
      (m: Json) => {
        m.format_version = 2 as unknown as Record<string, unknown>;
      },
      /format_version must be 1, got 2/,
    ],
    [
      'transform.min_size',
      (m: Json) => {
        m.transform.min_size = '800';
      },
      /transform\.min_size must be an integer > 0, got "800"/,
    ],
    [
      'transform.image_std',
      (m: Json) => {
        m.transform.image_std = [0.2, 0.2];
      },
      /transform\.image_std must be an array of 3 numbers/,
    ],
    [
      'transform.resize',
      (m: Json) => {
        m.transform.resize = 'nearest';
      },
      /transform\.resize must be bilinear/,
    ],
    [
      'rpn.levels anchors',
      (m: Json) => {
        m.rpn.num_anchors_per_location = 4;
      },
      /rpn\.levels\[0\] must be anchor_sizes x aspect_ratios = num_anchors_per_location \(4\)/,
    ],
    [
      'roi_heads.nms_thresh',
      (m: Json) => {
        m.roi_heads.nms_thresh = 1.5;
      },
      /roi_heads\.nms_thresh must be a number in \[0, 1\], got 1\.5/,
    ],
    [
      'roi_heads.level_mapper',
      (m: Json) => {
        m.roi_heads.level_mapper = { k_min: 2, k_max: 4, canonical_scale: 224, canonical_level: 4, eps: 1e-6 };
      },
      /k_max - k_min \+ 1 = 4/,
    ],
    [
      'graphs.box_head.sha256',
      (m: Json) => {
        (m.graphs.box_head as Record<string, unknown>).sha256 = 'abc';
      },
      /graphs\.box_head\.sha256 must be 64 hexadecimal digits/,
    ],
    [
      'a graph outside the directory',
      (m: Json) => {
        (m.graphs.box_head as Record<string, unknown>).file = '../box_head.onnx';
      },
      /graphs\.box_head\.file must be a file inside the model directory/,
    ],
    [
      'classes',
      (m: Json) => {
        m.classes = ['__background__'] as unknown as Record<string, unknown>;
      },
      /classes must be background plus at least one class/,
    ],
  ])('names the bad field: %s', async (_, edit, message) => {
    expect((await modelError(modelDir(edit as (m: Record<string, unknown>) => void))).message).toMatch(message);
  });

  it('allows a null level_mapper for a single-feature-map (C4) head only', () => {
    const m = manifest(Buffer.from('a'), Buffer.from('b')) as Json;
    m.roi_heads.featmap_names = ['0'];
    m.roi_heads.level_mapper = null as unknown as Record<string, unknown>;
    expect(validateManifest(m).roi_heads.level_mapper).toBeNull();
  });

  it('reads precision (fp32 when model.json omits it) and the int8 calibration record; refuses an unknown precision', () => {
    const plain = manifest(Buffer.from('a'), Buffer.from('b'));
    expect(validateManifest(plain).precision).toBe('fp32');
    expect(isSpeedOnly(validateManifest(plain))).toBe(false);
    const twin = validateManifest({ ...plain, precision: 'int8', calibration: { method: 'Percentile', speed_only: true } });
    expect(twin.precision).toBe('int8');
    expect(twin.calibration).toEqual({ method: 'Percentile', speed_only: true });
    expect(isSpeedOnly(twin)).toBe(true);
    expect(isSpeedOnly(validateManifest({ ...plain, precision: 'int8', calibration: { method: 'MinMax' } }))).toBe(false);
    expect(() => validateManifest({ ...plain, precision: 'fp16' })).toThrow(/precision must be one of fp32, int8, got "fp16"/);
    expect(() => validateManifest({ ...plain, precision: 'int8', calibration: 'MinMax' })).toThrow(/calibration must be an object/);
  });
});

describe('Detector.load on a bad model', () => {
  it('reports graphs ONNX Runtime cannot read as MODEL_INVALID', async () => {
    await expect(Detector.load(modelDir())).rejects.toMatchObject({
      code: 'MODEL_INVALID',
      message: expect.stringMatching(/ONNX Runtime cannot load the model graphs/),
    });
  });

  it('refuses bad detector options before touching the model', async () => {
    await expect(Detector.load(modelDir(), { intraOpThreads: 0 })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(Detector.load(modelDir(), { maxPixels: -1 })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
  });
});

describe('DEFAULT_MODEL_DIR', () => {
  it('is models/shapes-cpwc-r50-fpn in the package root', () => {
    expect(DEFAULT_MODEL_DIR).toBe(path.resolve(__dirname, '..', '..', 'models', 'shapes-cpwc-r50-fpn'));
  });
});
