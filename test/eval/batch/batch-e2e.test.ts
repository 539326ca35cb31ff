/**
 * `cpwc-detect eval --images` end to end, as real processes: the tiny test model over a small
 * COCO-format set of real photographs (test/eval/fixtures/batch-dataset), with a run killed
 * mid-way, one stopped with SIGINT, and both resumed; all must end with the same results as an
 * uninterrupted run, and those must equal scoring the detector's own output as a results file.
 */
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Detector } from '../../../src/detection/detector';
import { evaluateFiles } from '../../../src/eval/evaluate';
import { ensureDistBuilt, ROOT, tempDir } from '../../helpers/eval';
import { imagesWithHeldFile, until } from './batch-helpers';

const CLI = join(ROOT, 'dist/cli/index.js');
const ANNOTATIONS = join(ROOT, 'test/eval/fixtures/batch-dataset/annotations.json');
const IMAGES = join(ROOT, 'test/fixtures/images');
const MODEL = join(ROOT, 'test/fixtures/models/tiny-fpn');
const TOTAL_IMAGES = 10;

interface BatchJson {
  stats: number[];
  per_category: Record<string, number>;
  categories: { category_id: number; num_detections: number }[];
  counts: { images: number; detections_read: number };
  run: {
    images_total: number;
    images_scored: number;
    images_skipped: number;
    skipped: { image_id: number; reason: string }[];
    images_this_session: number;
    resumed: boolean;
    category_mapping: string;
    unmatched_model_classes: string[];
    categories_without_model_class: string[];
  };
}

/** The fixture set has a missing file and a non-image, so a run that scores needs --allow-missing. */
function batchArgs(out: string, extra: string[] = ['--allow-missing'], images = IMAGES): string[] {
  return [CLI, 'eval', '--annotations', ANNOTATIONS, '--images', images, '--model', MODEL, '--out', out, '--json', ...extra];
}

function runToEnd(
  out: string,
  extra: string[] = ['--allow-missing'],
  images = IMAGES,
): { status: number | null; json: BatchJson | undefined; stderr: string } {
  const result = spawnSync(process.execPath, batchArgs(out, extra, images), { cwd: ROOT, encoding: 'utf8' });
  return { status: result.status, json: result.status === 0 ? (JSON.parse(result.stdout) as BatchJson) : undefined, stderr: result.stderr };
}

function recordedImages(out: string): number {
  const file = join(out, 'images.jsonl');
  return existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.endsWith('}')).length
    : 0;
}

/**
 * Starts a batch run over `images`, waits until it has recorded the first image (it then blocks on
 * the held one), sends `signal`, and calls `afterSignal` with the stderr seen so far, to let it go on.
 */
async function interrupt(
  out: string,
  images: string,
  signal: NodeJS.Signals,
  afterSignal: (stderr: () => string) => Promise<void> = async () => undefined,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child = spawn(process.execPath, batchArgs(out, ['--allow-missing'], images), { cwd: ROOT });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, sig) => resolve({ code, signal: sig })),
  );
  await until(() => recordedImages(out) >= 1 || child.exitCode !== null, 'the run to record its first image');
  child.kill(signal);
  try {
    await afterSignal(() => stderr);
  } catch (err) {
    child.kill('SIGKILL'); // never leave a run blocked on the FIFO
    throw err;
  }
  return { ...(await exited), stderr };
}

/** The stable part of the result (timings and session counters differ between runs). */
function results(json: BatchJson): unknown {
  return { stats: json.stats, per_category: json.per_category, categories: json.categories, counts: json.counts };
}

let reference: BatchJson;
let referenceOut: string;

beforeAll(() => {
  ensureDistBuilt();
  referenceOut = join(tempDir(), 'run');
  const run = runToEnd(referenceOut);
  expect(run.stderr).toContain('eval: 10/10 images (100%)');
  expect(run.status).toBe(0);
  reference = run.json!;
});

describe('an uninterrupted run', () => {
  it('scores every readable image and reports the skipped ones', () => {
    expect(reference.run.images_total).toBe(TOTAL_IMAGES);
    expect(reference.run.images_skipped).toBe(2);
    expect(reference.run.images_scored).toBe(TOTAL_IMAGES - 2);
    expect(reference.counts.images).toBe(TOTAL_IMAGES - 2);
    expect(reference.run.skipped.map((s) => [s.image_id, s.reason.split(':')[0]])).toEqual([
      [9, 'file not found'],
      [10, 'IMAGE_UNSUPPORTED_FORMAT'],
    ]);
    expect(reference.run.resumed).toBe(false);
  });

  it('maps model classes to categories by name', () => {
    expect(reference.run.category_mapping).toBe('name');
    expect(reference.run.unmatched_model_classes).toEqual(['class_4', 'class_5']);
    expect(reference.run.categories_without_model_class).toEqual(['zebra']);
    expect(Object.keys(reference.per_category)).toEqual(['1', '2', '3', '4']);
    expect(reference.per_category['4']).toBe(0); // zebra has GT the model cannot find
    expect(reference.stats).toHaveLength(12);
    expect(reference.stats[1]).toBeGreaterThan(0); // some boxes sit on the model's detections
  });

  it("equals scoring the detector's own output as a COCO results file", async () => {
    const annotations = JSON.parse(readFileSync(ANNOTATIONS, 'utf8')) as {
      images: { id: number; file_name: string }[];
      annotations: { image_id: number }[];
      categories: { id: number; name: string }[];
    };
    const readable = annotations.images.filter((image) => image.id !== 9 && image.id !== 10);
    const categoryByName = new Map(annotations.categories.map((c) => [c.name, c.id]));
    const detector = await Detector.load(MODEL);
    const records: unknown[] = [];
    try {
      for (const image of readable) {
        const { detections } = await detector.detect(readFileSync(join(IMAGES, image.file_name)));
        for (const d of detections) {
          const category = categoryByName.get(d.label);
          if (category === undefined) continue;
          const { xmin, ymin, xmax, ymax } = d.box;
          records.push({ image_id: image.id, category_id: category, bbox: [xmin, ymin, xmax - xmin, ymax - ymin], score: d.score });
        }
      }
    } finally {
      await detector.close();
    }
    const dir = tempDir();
    const subset = {
      ...annotations,
      images: readable,
      annotations: annotations.annotations.filter((a) => a.image_id !== 9 && a.image_id !== 10),
    };
    writeFileSync(join(dir, 'gt.json'), JSON.stringify(subset));
    writeFileSync(join(dir, 'dt.json'), JSON.stringify(records));
    const scored = evaluateFiles(join(dir, 'gt.json'), join(dir, 'dt.json'));
    expect(reference.stats).toEqual(scored.summary.stats);
    expect(reference.counts.detections_read).toBe(records.length);
    // The written results are those records, in image order.
    const written = readFileSync(join(referenceOut, 'detections.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as unknown);
    expect(written).toEqual(records);
  });

  it('writes the report, with the count of unreadable images, and only retries those when run again', () => {
    const summary = JSON.parse(readFileSync(join(referenceOut, 'report/summary.json'), 'utf8')) as {
      stats: number[];
      run: { images_skipped: number };
    };
    expect(summary.stats).toEqual(reference.stats);
    expect(summary.run.images_skipped).toBe(2);
    expect(readFileSync(join(referenceOut, 'report/summary.md'), 'utf8')).toContain(
      '2 of 10 images unreadable or not decodable, left out of scoring',
    );
    expect(existsSync(join(referenceOut, 'report/pr_curves.png'))).toBe(true);
    const again = runToEnd(referenceOut);
    expect(again.status).toBe(0);
    expect(again.json!.run.images_this_session).toBe(2);
    expect(results(again.json!)).toEqual(results(reference));
  });
});

describe('a run with unreadable images and no --allow-missing', () => {
  it('exits 1 naming how many images could not be read, writes no report, and scores once they are allowed', () => {
    const out = join(tempDir(), 'run');
    const strict = runToEnd(out, []);
    expect(strict.status).toBe(1);
    expect(strict.stderr).toContain(
      '2 of 10 images could not be read or decoded, so their ground truth cannot be scored: 9 (missing.jpg: file not found); 10 ' +
        '(README.md: IMAGE_UNSUPPORTED_FORMAT',
    );
    expect(strict.stderr).toContain('or add --allow-missing to score the other 8 without them');
    expect(existsSync(join(out, 'report'))).toBe(false);
    expect(recordedImages(out)).toBe(TOTAL_IMAGES);
    const allowed = runToEnd(out);
    expect(allowed.status).toBe(0);
    expect(allowed.json!.run.images_this_session).toBe(2); // only the two failed images are tried again
    expect(results(allowed.json!)).toEqual(results(reference));
  });
});

describe('an interrupted run', () => {
  it('resumes after the process is killed, repeating and losing nothing', async () => {
    const out = join(tempDir(), 'run');
    const images = imagesWithHeldFile();
    const killed = await interrupt(out, images.dir, 'SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    const before = recordedImages(out);
    expect(before).toBe(1);
    images.restore();
    // As if the kill had landed in the middle of writing the next image.
    appendFileSync(join(out, 'detections.jsonl'), '{"image_id":99,"category_id":1,"bbox":[1,2,');
    appendFileSync(join(out, 'images.jsonl'), '{"image_id":99,"file_na');

    const resumed = runToEnd(out, ['--allow-missing'], images.dir);
    expect(resumed.status).toBe(0);
    expect(resumed.stderr).toContain(`eval: resuming ${out}: ${before}/${TOTAL_IMAGES} images already done`);
    expect(resumed.json!.run.resumed).toBe(true);
    expect(resumed.json!.run.images_this_session).toBe(TOTAL_IMAGES - before);
    expect(results(resumed.json!)).toEqual(results(reference));
    expect(readFileSync(join(out, 'detections.jsonl'))).toEqual(readFileSync(join(referenceOut, 'detections.jsonl')));
    const ids = readFileSync(join(out, 'images.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { image_id: number }).image_id);
    expect(ids).toEqual(Array.from({ length: TOTAL_IMAGES }, (_, i) => i + 1));
  });

  it('stops after the current image on SIGINT, exits 130 and says how to resume', async () => {
    const out = join(tempDir(), 'run');
    const images = imagesWithHeldFile();
    // the run is stopped while reading the second image: it finishes that one, then stops
    const stopped = await interrupt(out, images.dir, 'SIGINT', async (stderr) => {
      await until(() => stderr().includes('finishing the current image, then stopping'), 'the run to acknowledge SIGINT');
      images.feed();
    });
    expect(stopped.code).toBe(130);
    expect(stopped.stderr).toContain('finishing the current image, then stopping');
    expect(stopped.stderr).toContain('interrupted: 2 of 10 images are done and recorded in ');
    expect(stopped.stderr).toContain(`to resume: cpwc-detect eval --annotations ${ANNOTATIONS} --images ${images.dir}`);
    const done = recordedImages(out);
    expect(done).toBe(2);
    images.restore();
    const resumed = runToEnd(out, ['--allow-missing'], images.dir);
    expect(resumed.status).toBe(0);
    expect(resumed.json!.run.images_this_session).toBe(TOTAL_IMAGES - done);
    expect(results(resumed.json!)).toEqual(results(reference));
  });

  it('refuses to resume with different options', () => {
    const other = runToEnd(referenceOut, ['--score-threshold', '0.5']);
    expect(other.status).toBe(1);
    expect(other.stderr).toContain('holds a run with a different score threshold (null, now 0.5)');
  });
});
