/**
 * Progress of a batch run on stderr: a bar redrawn in place on a terminal, plain lines
 * (every 10% or 10 s) when stderr is a file or a pipe.
 */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

export class Progress {
  private readonly startedAt: number;
  private readonly startDone: number;
  private lastDrawAt = 0;
  private lastLineDecile = -1;
  private lastLineAt = 0;
  private drawn = false;
  private lastLineDone = -1;

  constructor(
    private readonly total: number,
    alreadyDone: number,
    private readonly stream: ProgressStream = process.stderr,
    private readonly now: () => number = () => performance.now(),
    /** Line prefix: 'eval', or 'eval[shard 1/3]' so that each shard's progress is its own. */
    private readonly label: string = 'eval',
  ) {
    this.startedAt = now();
    this.startDone = alreadyDone;
    this.lastLineAt = this.startedAt;
  }

  /** Text of the current state: "37/150 (25%)  2.4 images/s  ETA 0:47  skipped 1". */
  describe(done: number, skipped: number): string {
    const elapsed = (this.now() - this.startedAt) / 1000;
    const processed = done - this.startDone;
    const rate = elapsed > 0 ? processed / elapsed : 0;
    const eta = rate > 0 ? (this.total - done) / rate : Infinity;
    const percent = this.total === 0 ? 100 : Math.floor((100 * done) / this.total);
    const parts = [
      `${done}/${this.total} images (${percent}%)`,
      `${rate.toFixed(rate < 10 ? 2 : 1)} images/s`,
      `ETA ${done >= this.total ? '0:00' : clock(eta)}`,
    ];
    if (skipped > 0) parts.push(`skipped ${skipped}`);
    return parts.join('  ');
  }

  update(done: number, skipped: number, force = false): void {
    const t = this.now();
    if (this.stream.isTTY === true) {
      if (!force && t - this.lastDrawAt < 100) return;
      const width = 24;
      const filled = this.total === 0 ? width : Math.round((width * done) / this.total);
      this.stream.write(`\r\x1b[K${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.describe(done, skipped)}`);
      this.drawn = true;
    } else {
      const decile = this.total === 0 ? 10 : Math.floor((10 * done) / this.total);
      if (!force && decile === this.lastLineDecile && t - this.lastLineAt < 10_000) return;
      if (force && done === this.lastLineDone) return;
      this.lastLineDecile = decile;
      this.lastLineAt = t;
      this.lastLineDone = done;
      this.stream.write(`${this.label}: ${this.describe(done, skipped)}\n`);
    }
    this.lastDrawAt = t;
  }

  /** Ends the bar's line so later messages start on a fresh line. */
  finish(done: number, skipped: number): void {
    this.update(done, skipped, true);
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }
}
