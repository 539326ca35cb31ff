/**
 * The run directory of a batch evaluation (`--out DIR`), built so that a crash or Ctrl-C at any
 * instant loses nothing and repeats nothing:
 *
 *   run.json          what the run is (annotation file, model, options); a resume must match it
 *   detections.jsonl  COCO results, one detection per line, appended image by image
 *   images.jsonl      one line per finished image (also with zero detections, or skipped), written
 *                     after that image's detections are on disk, with the byte length
 *                     detections.jsonl had at that point
 *   report/           written at the end
 *
 * Every append is fsynced. On resume, a partial last line of images.jsonl is dropped and
 * detections.jsonl is cut back to the length the last finished image recorded, which removes
 * the detections (and any half-written line) of the image that was in progress.
 */
import { closeSync, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { EvalError } from '../errors';

export const RUN_FORMAT = 'cpwc-detect-eval-run';

export interface RunManifest {
  format: typeof RUN_FORMAT;
  version: 1;
  annotations: string;
  annotations_sha256: string;
  images_dir: string;
  model_dir: string;
  model_json_sha256: string;
  model_name: string;
  score_threshold: number | null;
  /** "class_id" -> dataset category_id, as the run maps them. */
  category_map: Record<string, number>;
  created_at: string;
}

/** The manifest fields that must be equal for a resume to continue the same run. */
const IDENTITY_FIELDS = ['annotations_sha256', 'model_json_sha256', 'score_threshold', 'category_map'] as const;

export interface ImageRecord {
  image_id: number;
  file_name: string | null;
  status: 'done' | 'skipped';
  detections: number;
  /** Byte length of detections.jsonl once this image's detections were written. */
  detections_end: number;
  /** Why a skipped image was skipped (missing, unreadable, not an image). */
  reason?: string;
}

export class RunDirectory {
  readonly dir: string;
  readonly manifest: RunManifest;
  /** Finished images by id, from earlier sessions and this one. */
  readonly images = new Map<number, ImageRecord>();
  /** True when the directory held an earlier, unfinished or finished, session of this run. */
  readonly resumed: boolean;
  private detectionsFd: number;
  private imagesFd: number;
  private detectionsLength: number;
  private readonly lockPath: string;

  private constructor(dir: string, manifest: RunManifest, resumed: boolean) {
    this.dir = dir;
    this.manifest = manifest;
    this.resumed = resumed;
    this.lockPath = join(dir, '.lock');
    this.detectionsFd = -1;
    this.imagesFd = -1;
    this.detectionsLength = 0;
  }

  get detectionsPath(): string {
    return join(this.dir, 'detections.jsonl');
  }

  get imagesPath(): string {
    return join(this.dir, 'images.jsonl');
  }

  /** Creates the run directory, or reopens it for a resume after checking that it is the same run. */
  static open(dir: string, manifest: RunManifest): RunDirectory {
    mkdirSync(dir, { recursive: true });
    const manifestPath = join(dir, 'run.json');
    let run: RunDirectory;
    if (existsSync(manifestPath)) {
      const previous = JSON.parse(readFileSync(manifestPath, 'utf8')) as RunManifest;
      for (const field of IDENTITY_FIELDS) {
        if (JSON.stringify(previous[field]) !== JSON.stringify(manifest[field])) {
          throw new EvalError(
            'RUN_MISMATCH',
            `${dir} holds a run with a different ${field.replace(/_/g, ' ')} (${JSON.stringify(previous[field])}, now ${JSON.stringify(manifest[field])}); ` +
              'use another --out directory, or delete this one to start over',
            { file: manifestPath, field },
          );
        }
      }
      run = new RunDirectory(dir, { ...previous, images_dir: manifest.images_dir }, true);
    } else {
      const entries = readdirSync(dir).filter((name) => name !== '.lock');
      if (entries.length > 0) {
        throw new EvalError('RUN_MISMATCH', `${dir} is not empty and has no run.json: refusing to write a run into it (use a new --out directory)`, {
          file: dir,
        });
      }
      writeFileSync(`${manifestPath}.tmp`, `${JSON.stringify(manifest, null, 2)}\n`);
      renameSync(`${manifestPath}.tmp`, manifestPath);
      run = new RunDirectory(dir, manifest, false);
    }
    run.lock();
    try {
      run.recover();
    } catch (err) {
      run.close();
      throw err;
    }
    return run;
  }

  private lock(): void {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(this.lockPath, `${process.pid}\n`, { flag: 'wx' });
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const pid = Number(readFileSync(this.lockPath, 'utf8').trim());
        if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
          throw new EvalError('RUN_MISMATCH', `another cpwc-detect eval (pid ${pid}) is writing to ${this.dir}`, { file: this.lockPath });
        }
        unlinkSync(this.lockPath); // stale: its process is gone
      }
    }
  }

  /** Reads images.jsonl (dropping a partial last line) and cuts detections.jsonl back to match it. */
  private recover(): void {
    this.imagesFd = openSync(this.imagesPath, 'a+');
    this.detectionsFd = openSync(this.detectionsPath, 'a+');
    const text = readFileSync(this.imagesPath, 'utf8');
    const complete = text.slice(0, text.lastIndexOf('\n') + 1);
    if (complete.length !== text.length) ftruncateSync(this.imagesFd, Buffer.byteLength(complete));
    let expectedDetectionsLength = 0;
    complete.split('\n').forEach((line, i) => {
      if (line.trim() === '') return;
      let record: ImageRecord;
      try {
        record = JSON.parse(line) as ImageRecord;
      } catch (cause) {
        throw new EvalError('JSON_MALFORMED', `${this.imagesPath}: line ${i + 1}: not valid JSON (the run directory is damaged)`, {
          file: this.imagesPath,
          location: `line ${i + 1}`,
        }, { cause });
      }
      this.images.set(record.image_id, record);
      expectedDetectionsLength = record.detections_end;
    });
    const actual = readFileSync(this.detectionsPath).length;
    if (actual < expectedDetectionsLength) {
      throw new EvalError(
        'RUN_MISMATCH',
        `${this.detectionsPath} is shorter (${actual} bytes) than images.jsonl records (${expectedDetectionsLength}): the run directory is damaged; start a new run`,
        { file: this.detectionsPath },
      );
    }
    if (actual > expectedDetectionsLength) ftruncateSync(this.detectionsFd, expectedDetectionsLength);
    this.detectionsLength = expectedDetectionsLength;
  }

  /**
   * Records one finished image: its detection lines (COCO results, each ending in '\n') first,
   * then its images.jsonl line, each fsynced.
   */
  commitImage(record: Omit<ImageRecord, 'detections_end'>, detectionLines: string): ImageRecord {
    if (detectionLines.length > 0) {
      const bytes = Buffer.from(detectionLines, 'utf8');
      writeAll(this.detectionsFd, bytes);
      fsyncSync(this.detectionsFd);
      this.detectionsLength += bytes.length;
    }
    const full: ImageRecord = { ...record, detections_end: this.detectionsLength };
    writeAll(this.imagesFd, Buffer.from(`${JSON.stringify(full)}\n`, 'utf8'));
    fsyncSync(this.imagesFd);
    this.images.set(full.image_id, full);
    return full;
  }

  close(): void {
    for (const fd of [this.detectionsFd, this.imagesFd]) if (fd >= 0) closeSync(fd);
    this.detectionsFd = -1;
    this.imagesFd = -1;
    try {
      if (readFileSync(this.lockPath, 'utf8').trim() === String(process.pid)) unlinkSync(this.lockPath);
    } catch {
      // already gone
    }
  }
}

function writeAll(fd: number, bytes: Buffer): void {
  let offset = 0;
  while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
