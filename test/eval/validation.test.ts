import type { CocoEvalError, CocoEvalErrorCode } from '../../src/eval/errors';
import { loadDetectionsFile } from '../../src/eval/detections';
import { loadGroundTruthFile } from '../../src/eval/ground-truth';
import { cocoDataset, cocoEvalError, tempDir, writeTemp } from '../helpers/eval';

const dir = tempDir();
const gtFile = writeTemp(
  dir,
  'gt.json',
  JSON.stringify(cocoDataset({ images: [1, 2], categories: [1, 2], annotations: [{ image_id: 1, category_id: 1, bbox: [0, 0, 10, 10] }] })),
);
const gt = loadGroundTruthFile(gtFile);

const good = { image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], score: 0.5 };

describe('detections', () => {
  it.each<[string, unknown, CocoEvalErrorCode, string, string]>([
    ['a missing bbox', { image_id: 1, category_id: 1, score: 0.5 }, 'FIELD_MISSING', 'bbox', "missing field 'bbox'"],
    ['a missing score', { image_id: 1, category_id: 1, bbox: [0, 0, 1, 1] }, 'FIELD_MISSING', 'score', "missing field 'score'"],
    [
      'a bbox of 3 numbers',
      { ...good, bbox: [0, 0, 10] },
      'FIELD_INVALID',
      'bbox',
      "field 'bbox' must be an array [x, y, width, height], got [0,0,10]",
    ],
    [
      'a bbox with a string',
      { ...good, bbox: [0, '0', 10, 10] },
      'FIELD_INVALID',
      'bbox',
      'field \'bbox\' must be [x, y, width, height] of finite numbers (entry 1 is the string "0")',
    ],
    [
      'a negative width',
      { ...good, bbox: [0, 0, -1, 10] },
      'FIELD_INVALID',
      'bbox',
      "field 'bbox' must be [x, y, width, height] with width >= 0 and height >= 0, got [0,0,-1,10]",
    ],
    [
      'an infinite score (1e999)',
      { ...good, score: 'OVERFLOW' },
      'FIELD_INVALID',
      'score',
      "field 'score' must be a finite number, got Infinity",
    ],
    ['a string image_id', { ...good, image_id: '1' }, 'FIELD_INVALID', 'image_id', "field 'image_id' must be a numeric id"],
    ['an unknown image', { ...good, image_id: 7 }, 'UNKNOWN_IMAGE', 'image_id', `image_id 7 is not an image of ${gtFile}`],
  ])('rejects %s, naming the file, the element and the field', (_what, bad, code, field, message) => {
    const file = writeTemp(dir, 'dt.json', JSON.stringify([good, bad]).replace('"OVERFLOW"', '1e999'));
    const err = cocoEvalError(() => loadDetectionsFile(file, gt));
    expect(err.code).toBe(code);
    expect(err.file).toBe(file);
    expect(err.location).toBe('element 1 (line 1)');
    expect(err.field).toBe(field);
    expect(err.message).toContain(`${file}: element 1 (line 1): ${message}`);
  });

  it('names the line in JSON Lines files', () => {
    const file = writeTemp(dir, 'dt.jsonl', `${JSON.stringify(good)}\n${JSON.stringify({ ...good, image_id: 9 })}\n`);
    const err = cocoEvalError(() => loadDetectionsFile(file, gt));
    expect(err.code).toBe('UNKNOWN_IMAGE');
    expect(err.message).toContain(`${file}: line 2: image_id 9`);
  });

  it('ignores and counts detections of categories the annotation file does not list', () => {
    const file = writeTemp(dir, 'dt-unknown-cat.json', JSON.stringify([good, { ...good, category_id: 99 }]));
    const dets = loadDetectionsFile(file, gt);
    expect(dets.count).toBe(1);
    expect(dets.unknownCategory).toBe(1);
  });
});

describe('ground truth', () => {
  function gtError(content: string): CocoEvalError {
    const file = writeTemp(dir, 'bad-gt.json', content);
    return cocoEvalError(() => loadGroundTruthFile(file));
  }
  const dataset = (annotations: unknown[]): string =>
    JSON.stringify({ images: [{ id: 1 }], categories: [{ id: 1, name: 'a' }], annotations });
  const ann = { id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], area: 100, iscrowd: 0 };

  it('reports malformed JSON with line and column', () => {
    const err = gtError('{\n  "images": [],\n  "annotations": [}\n');
    expect(err.code).toBe('JSON_MALFORMED');
    expect(err.message).toMatch(/bad-gt\.json: line 3, column \d+: not valid JSON/);
  });

  it('reports a truncated file as truncated', () => {
    const err = gtError('{"images": [{"id": 1}], "annotations": [');
    expect(err.code).toBe('JSON_TRUNCATED');
  });

  it.each<[string, string, CocoEvalErrorCode, string]>([
    ['no annotations array', JSON.stringify({ images: [], categories: [] }), 'FIELD_MISSING', "missing field 'annotations'"],
    ['an annotation without area', dataset([{ ...ann, area: undefined }]), 'FIELD_MISSING', "annotations[0]: missing field 'area'"],
    ['a negative height', dataset([{ ...ann, bbox: [0, 0, 10, -2] }]), 'FIELD_INVALID', "annotations[0]: field 'bbox'"],
    ['an iscrowd of 2', dataset([{ ...ann, iscrowd: 2 }]), 'FIELD_INVALID', "field 'iscrowd' must be 0, 1, true or false"],
    ['two annotations with one id', dataset([ann, { ...ann }]), 'DUPLICATE_ID', 'annotations[1]: another annotation already has id 1'],
    [
      'a category without a name',
      JSON.stringify({ images: [], annotations: [], categories: [{ id: 1 }] }),
      'FIELD_MISSING',
      "categories[0]: missing field 'name'",
    ],
  ])('rejects %s', (_what, content, code, message) => {
    const err = gtError(content);
    expect(err.code).toBe(code);
    expect(err.message).toContain(message);
  });

  it('skips, like pycocotools, annotations of unlisted images or categories, and counts them', () => {
    const file = writeTemp(dir, 'gt-skip.json', dataset([ann, { ...ann, id: 2, image_id: 5 }, { ...ann, id: 3, category_id: 5 }]));
    const loaded = loadGroundTruthFile(file);
    expect(loaded.annotations.count).toBe(1);
    expect(loaded.skippedAnnotations).toEqual({ unknownImage: 1, unknownCategory: 1 });
  });

  it('sorts images and categories by id, as pycocotools does', () => {
    const file = writeTemp(
      dir,
      'gt-order.json',
      JSON.stringify({
        images: [{ id: 30 }, { id: 4 }],
        categories: [
          { id: 9, name: 'b' },
          { id: 2, name: 'a' },
        ],
        annotations: [],
      }),
    );
    const loaded = loadGroundTruthFile(file);
    expect(loaded.images.map((i) => i.id)).toEqual([4, 30]);
    expect(loaded.categoryIds).toEqual([2, 9]);
  });
});
