import { appendFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readRecordedImages, RUN_FORMAT, RunDirectory, type RunManifest } from '../../../src/eval/batch/run-dir';
import { cocoEvalError, tempDir } from '../../helpers/eval';

const manifest: RunManifest = {
  format: RUN_FORMAT,
  version: 1,
  annotations: '/data/val.json',
  annotations_sha256: 'a'.repeat(64),
  images_dir: '/data/images',
  model_dir: '/models/m',
  model_json_sha256: 'b'.repeat(64),
  model_name: 'm',
  model_identity: {
    name: 'm',
    graphs_sha256: { backbone_rpn: 'c'.repeat(64), box_head: 'd'.repeat(64) },
    input: { min_size: 320, max_size: 512, size_divisible: 32 },
    defaults: { score_threshold: 0.05, max_detections: 100 },
  },
  score_threshold: null,
  category_map: { '1': 1 },
  shard: null,
  detector: 'local',
  created_at: '2026-01-01T00:00:00.000Z',
};

const line = (imageId: number, score: number): string =>
  `${JSON.stringify({ image_id: imageId, category_id: 1, bbox: [0, 0, 1, 1], score })}\n`;

describe('RunDirectory', () => {
  it('records images (also those with no detections) and reopens with them done', () => {
    const dir = join(tempDir(), 'run');
    const run = RunDirectory.open(dir, manifest);
    expect(run.resumed).toBe(false);
    run.commitImage({ image_id: 1, file_name: 'a.jpg', status: 'done', detections: 2 }, line(1, 0.9) + line(1, 0.8));
    run.commitImage({ image_id: 2, file_name: 'b.jpg', status: 'done', detections: 0 }, '');
    run.commitImage({ image_id: 3, file_name: null, status: 'skipped', detections: 0, reason: 'file not found' }, '');
    run.close();
    expect(existsSync(join(dir, '.lock'))).toBe(false);

    const again = RunDirectory.open(dir, { ...manifest, created_at: 'later' });
    expect(again.resumed).toBe(true);
    expect([...again.images.keys()]).toEqual([1, 2, 3]);
    expect(again.images.get(3)!.reason).toBe('file not found');
    expect(again.manifest.created_at).toBe(manifest.created_at);
    again.close();
  });

  it('drops a half-written images.jsonl line and the detections of the image in progress', () => {
    const dir = join(tempDir(), 'run');
    const run = RunDirectory.open(dir, manifest);
    run.commitImage({ image_id: 1, file_name: 'a.jpg', status: 'done', detections: 1 }, line(1, 0.9));
    run.close();
    const committed = readFileSync(join(dir, 'detections.jsonl'), 'utf8');
    // A crash while image 2 was being written: its detections (one half-written) and a partial record.
    appendFileSync(join(dir, 'detections.jsonl'), `${line(2, 0.7)}{"image_id":2,"categ`);
    appendFileSync(join(dir, 'images.jsonl'), '{"image_id":2,"file_na');

    const resumed = RunDirectory.open(dir, manifest);
    expect([...resumed.images.keys()]).toEqual([1]);
    expect(readFileSync(join(dir, 'detections.jsonl'), 'utf8')).toBe(committed);
    expect(readFileSync(join(dir, 'images.jsonl'), 'utf8').endsWith('}\n')).toBe(true);
    resumed.commitImage({ image_id: 2, file_name: 'b.jpg', status: 'done', detections: 1 }, line(2, 0.7));
    resumed.close();
    expect(readFileSync(join(dir, 'detections.jsonl'), 'utf8')).toBe(committed + line(2, 0.7));
    expect(
      readFileSync(join(dir, 'images.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).image_id),
    ).toEqual([1, 2]);
  });

  it('refuses to resume a run of another annotation file, model or threshold', () => {
    const dir = join(tempDir(), 'run');
    RunDirectory.open(dir, manifest).close();
    const otherGraph = {
      ...manifest.model_identity,
      graphs_sha256: { ...manifest.model_identity.graphs_sha256, box_head: 'e'.repeat(64) },
    };
    const err = cocoEvalError(() => RunDirectory.open(dir, { ...manifest, model_identity: otherGraph }));
    expect(err.code).toBe('RUN_MISMATCH');
    expect(err.message).toContain('holds a run with a different model identity');
    expect(err.message).toContain(`"box_head":"${'e'.repeat(64)}"`);
    expect(cocoEvalError(() => RunDirectory.open(dir, { ...manifest, score_threshold: 0.5 })).field).toBe('score_threshold');
  });

  it('resumes a run.json of an earlier version (no model identity) when model.json is the same, and refuses it when not', () => {
    const dir = join(tempDir(), 'run');
    RunDirectory.open(dir, manifest).close();
    const { model_identity: _identity, shard: _shard, detector: _detector, ...earlier } = manifest;
    writeFileSync(join(dir, 'run.json'), JSON.stringify(earlier));
    const resumed = RunDirectory.open(dir, manifest);
    expect(resumed.resumed).toBe(true);
    expect(resumed.manifest.model_identity).toEqual(manifest.model_identity);
    resumed.close();
    const err = cocoEvalError(() => RunDirectory.open(dir, { ...manifest, model_json_sha256: 'f'.repeat(64) }));
    expect(err.field).toBe('model_identity');
  });

  it('refuses a non-empty directory that is not a run', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    expect(cocoEvalError(() => RunDirectory.open(dir, manifest)).message).toContain('is not empty and has no run.json');
  });

  it('refuses a directory another live process is writing to, and takes over a stale lock', () => {
    const dir = join(tempDir(), 'run');
    RunDirectory.open(dir, manifest).close();
    writeFileSync(join(dir, '.lock'), `${process.ppid}\n`);
    expect(cocoEvalError(() => RunDirectory.open(dir, manifest)).message).toContain(`another cpwc-detect eval (pid ${process.ppid})`);
    writeFileSync(join(dir, '.lock'), '999999999\n');
    RunDirectory.open(dir, manifest).close();
  });
});

describe('RunDirectory after a crash while creating the run', () => {
  it('starts the run when only a half-written run.json.tmp (and a stale lock) is there', () => {
    const dir = join(tempDir(), 'run');
    RunDirectory.open(dir, manifest).close();
    // The state a crash between writing run.json.tmp and its rename leaves: no run.json yet.
    rmSync(join(dir, 'run.json'));
    rmSync(join(dir, 'images.jsonl'));
    rmSync(join(dir, 'detections.jsonl'));
    writeFileSync(join(dir, 'run.json.tmp'), '{"format": "cpwc-detect-eval-run", "vers');
    writeFileSync(join(dir, '.lock'), '999999999\n');

    const run = RunDirectory.open(dir, manifest);
    expect(run.resumed).toBe(false);
    run.commitImage({ image_id: 1, file_name: 'a.jpg', status: 'done', detections: 1 }, line(1, 0.9));
    run.close();
    expect(existsSync(join(dir, 'run.json.tmp'))).toBe(false);
    expect(JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'))).toEqual(manifest);
    const again = RunDirectory.open(dir, manifest);
    expect(again.resumed).toBe(true);
    expect([...again.images.keys()]).toEqual([1]);
    again.close();
  });
});

describe('readRecordedImages', () => {
  it("reads another process's finished images with their detection lines, ignoring a half-written tail", () => {
    const dir = join(tempDir(), 'run');
    const run = RunDirectory.open(dir, manifest);
    run.commitImage({ image_id: 1, file_name: 'a.jpg', status: 'done', detections: 2 }, line(1, 0.9) + line(1, 0.8));
    run.commitImage({ image_id: 2, file_name: null, status: 'skipped', detections: 0, reason: 'file not found' }, '');
    run.commitImage({ image_id: 3, file_name: 'c.jpg', status: 'done', detections: 1 }, line(3, 0.5));
    run.commitImage({ image_id: 2, file_name: 'b.jpg', status: 'done', detections: 1 }, line(2, 0.7)); // retried
    appendFileSync(join(dir, 'detections.jsonl'), line(4, 0.1));
    appendFileSync(join(dir, 'images.jsonl'), '{"image_id":4,"file_na');
    const recorded = readRecordedImages(dir);
    run.close();
    expect(recorded.map((r) => [r.record.image_id, r.record.status, r.lines])).toEqual([
      [1, 'done', line(1, 0.9) + line(1, 0.8)],
      [3, 'done', line(3, 0.5)],
      [2, 'done', line(2, 0.7)],
    ]);
  });
});
