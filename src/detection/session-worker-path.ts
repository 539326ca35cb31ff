/**
 * Where the session worker's program is. Compiled (dist/), it is dist/detection/session-worker.js,
 * next to this file. Run from the TypeScript sources (ts-jest), this file is src/detection/
 * session-worker-path.ts and a worker thread cannot run TypeScript, so the compiled worker in dist/ is
 * used: the same program, built by `npm run build` (which `npm test` runs first). A missing or stale
 * build (older than the worker's sources) is refused, so tests never run an old worker.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const WORKER_SOURCES = ['session-worker.ts', 'session-messages.ts'];

export function sessionWorkerPath(): string {
  if (!__filename.endsWith('.ts')) return path.join(__dirname, 'session-worker.js');
  const compiled = path.resolve(__dirname, '../../dist/detection/session-worker.js');
  const built = fs.statSync(compiled, { throwIfNoEntry: false });
  // invariant: only when running from the TypeScript sources without `npm run build` (never from dist/)
  if (built === undefined) throw new Error(`the session worker is not built (${compiled} is missing): run \`npm run build\``);
  for (const source of WORKER_SOURCES) {
    const file = path.join(__dirname, source);
    if (fs.statSync(file).mtimeMs > built.mtimeMs) {
      // invariant: only when running from the TypeScript sources after editing the worker without rebuilding
      throw new Error(`the built session worker ${compiled} is older than ${file}: run \`npm run build\``);
    }
  }
  return compiled;
}
