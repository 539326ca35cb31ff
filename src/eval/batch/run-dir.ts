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
 *   shards/K-of-N/    runs of `--shard K/N` (each one laid out like this), merged by the run
 *                     without --shard
 *
 * Every append is fsynced. On resume, a partial last line of images.jsonl is dropped and
 * detections.jsonl is cut back to the length the last finished image recorded, which removes
 * the detections (and any half-written line) of the image that was in progress.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { CocoEvalError } from '../errors';
import type { ModelIdentity } from './model-identity';

export const RUN_FORMAT = 'cpwc-detect-eval-run';

export interface RunManifest {
  format: typeof RUN_FORMAT;
  version: 1;
  annotations: string;
  annotations_sha256: string;
  images_dir: string;
  model_dir: string;
  /** sha256 of model.json; null when detection ran through servers (--server). */
  model_json_sha256: string | null;
  model_name: string;
  /** What makes two runs' detections equal: name, graph checksums, input sizes, defaults (model-identity.ts). */
  model_identity: ModelIdentity;
  score_threshold: number | null;
  /** `--shard K/N` as { index: K, count: N }; null for the whole dataset. */
  shard: { index: number; count: number } | null;
  /** 'local' (a model directory) or the server URLs (--server), for the record. */
  detector: string;
  /** "class_id" -> dataset category_id, as the run maps them. */
  category_map: Record<string, number>;
  created_at: string;
}

/** The manifest fields that must be equal for two sessions (or a shard and its merge) to be one run. */
export const IDENTITY_FIELDS = ['annotations_sha256', 'model_identity', 'score_threshold', 'category_map'] as const;

/** Entries a run directory may hold before its run.json exists (a crash while it was being created). */
const CREATION_LEFTOVERS = new Set(['.lock', 'run.json.tmp', 'shards']);

/**
 * The first identity field in which `previous` (a run.json on disk) differs from `manifest`,
 * with both values, or undefined when they are the same run.
 */
export function identityDifference(
  previous: Partial<RunManifest>,
  manifest: RunManifest,
  fields: readonly (keyof RunManifest)[] = [...IDENTITY_FIELDS, 'shard'],
): { field: string; was: string; now: string } | undefined {
  for (const field of fields) {
    const was = JSON.stringify(previous[field] ?? null);
    const now = JSON.stringify(manifest[field] ?? null);
    if (was !== now) return { field, was, now };
  }
  return undefined;
}

/**
 * A run.json written before runs recorded `model_identity` (and `shard`) is the same run when its
 * model.json sha256 is this one's: it gets this run's identity, so an interrupted run of an
 * earlier version resumes.
 */
function upgradeManifest(previous: RunManifest, manifest: RunManifest): RunManifest {
  if (
    previous.model_identity !== undefined ||
    previous.model_json_sha256 === null ||
    previous.model_json_sha256 !== manifest.model_json_sha256
  )
    return previous;
  return { ...previous, model_identity: manifest.model_identity, shard: previous.shard ?? null, detector: previous.detector ?? 'local' };
}

/** Reads and parses a run.json. */
export function readManifest(file: string): RunManifest {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new CocoEvalError('FILE_UNREADABLE', `${file}: cannot read the run manifest: ${(cause as Error).message}`, { file }, { cause });
  }
  try {
    return JSON.parse(text) as RunManifest;
  } catch (cause) {
    throw new CocoEvalError('JSON_MALFORMED', `${file}: not valid JSON (the run directory is damaged)`, { file }, { cause });
  }
}

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
    const lockPath = join(dir, '.lock');
    lockDirectory(dir, lockPath);
    let run: RunDirectory | undefined;
    try {
      if (existsSync(manifestPath)) {
        const previous = upgradeManifest(readManifest(manifestPath), manifest);
        const difference = identityDifference(previous, manifest);
        if (difference !== undefined) {
          throw new CocoEvalError(
            'RUN_MISMATCH',
            `${dir} holds a run with a different ${difference.field.replace(/_/g, ' ')} (${difference.was}, now ${difference.now}); ` +
              'use another --out directory, or delete this one to start over',
            { file: manifestPath, field: difference.field },
          );
        }
        run = new RunDirectory(dir, { ...previous, images_dir: manifest.images_dir, detector: manifest.detector }, true);
      } else {
        const entries = readdirSync(dir).filter((name) => !CREATION_LEFTOVERS.has(name));
        if (entries.length > 0) {
          throw new CocoEvalError(
            'RUN_MISMATCH',
            `${dir} is not empty and has no run.json: refusing to write a run into it (use a new --out directory)`,
            {
              file: dir,
            },
          );
        }
        // A run.json.tmp without run.json is a creation that crashed before the rename: redo it.
        writeFileSync(`${manifestPath}.tmp`, `${JSON.stringify(manifest, null, 2)}\n`);
        renameSync(`${manifestPath}.tmp`, manifestPath);
        run = new RunDirectory(dir, manifest, false);
      }
      run.recover();
    } catch (err) {
      if (run === undefined) unlockDirectory(lockPath);
      else run.close();
      throw err;
    }
    return run;
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
      const record = parseImageRecord(line, i, this.imagesPath);
      this.images.set(record.image_id, record);
      expectedDetectionsLength = record.detections_end;
    });
    const actual = readFileSync(this.detectionsPath).length;
    if (actual < expectedDetectionsLength) {
      throw new CocoEvalError(
        'RUN_MISMATCH',
        `${this.detectionsPath} is shorter (${actual} bytes) than images.jsonl records (${expectedDetectionsLength}): ` +
          'the run directory is damaged; start a new run',
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
    unlockDirectory(this.lockPath);
  }
}

/** One finished image of a run directory read by another process, with its detection lines. */
export interface RecordedImage {
  record: ImageRecord;
  /** Its lines of detections.jsonl, each ending in '\n' ('' when it has none). */
  lines: string;
}

/** Line `i` (0-based) of images.jsonl at `imagesPath`, parsed; JSON_MALFORMED naming the line when it is not JSON. */
function parseImageRecord(line: string, i: number, imagesPath: string): ImageRecord {
  try {
    return JSON.parse(line) as ImageRecord;
  } catch (cause) {
    throw new CocoEvalError(
      'JSON_MALFORMED',
      `${imagesPath}: line ${i + 1}: not valid JSON (the run directory is damaged)`,
      { file: imagesPath, location: `line ${i + 1}` },
      { cause },
    );
  }
}

/**
 * Reads the finished images of a run directory without changing it (another process may be
 * appending to it): the complete lines of images.jsonl, each with the detections.jsonl bytes
 * between the previous record's detections_end and its own. Records in file order; an image
 * recorded twice (a skipped image retried) keeps its last record.
 */
export function readRecordedImages(dir: string): RecordedImage[] {
  const imagesPath = join(dir, 'images.jsonl');
  const detectionsPath = join(dir, 'detections.jsonl');
  const text = existsSync(imagesPath) ? readFileSync(imagesPath, 'utf8') : '';
  const detections = existsSync(detectionsPath) ? readFileSync(detectionsPath) : Buffer.alloc(0);
  const byId = new Map<number, RecordedImage>();
  let start = 0;
  text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '') return;
      const record = parseImageRecord(line, i, imagesPath);
      if (record.detections_end > detections.length || record.detections_end < start) {
        throw new CocoEvalError(
          'RUN_MISMATCH',
          `${imagesPath}: line ${i + 1}: records detections up to byte ${record.detections_end}, ` +
            `${detectionsPath} has ${detections.length}: the run directory is damaged`,
          {
            file: detectionsPath,
            location: `line ${i + 1}`,
          },
        );
      }
      byId.delete(record.image_id);
      byId.set(record.image_id, { record, lines: detections.subarray(start, record.detections_end).toString('utf8') });
      start = record.detections_end;
    });
  return [...byId.values()];
}

/** Takes `dir`'s lock file for this process, or refuses while another live process holds it. */
function lockDirectory(dir: string, lockPath: string): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lockPath, `${process.pid}\n`, { flag: 'wx' });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = lockHolder(lockPath);
      if (pid !== undefined && pid !== process.pid) {
        throw new CocoEvalError('RUN_MISMATCH', `another cpwc-detect eval (pid ${pid}) is writing to ${dir}`, { file: lockPath });
      }
      unlinkSync(lockPath); // stale: its process is gone
    }
  }
}

/** The live process holding a run directory's lock file, if any. */
export function lockHolder(lockPath: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(lockPath, 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 && processAlive(pid) ? pid : undefined;
}

function unlockDirectory(lockPath: string): void {
  try {
    if (readFileSync(lockPath, 'utf8').trim() === String(process.pid)) unlinkSync(lockPath);
  } catch {
    // already gone
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
