/**
 * The project's Python interpreter for tests that run a Python tool, reference or client:
 * `$CPWC_PYTHON` when set, else `<repo>/.venv/bin/python` (the venv of scripts/constraints.txt,
 * made by tools/setup-venv.sh). Fails clearly when it is missing instead of skipping.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const REPO_ROOT = path.join(__dirname, '..', '..');

export function pythonExecutable(): string {
  const configured = process.env.CPWC_PYTHON;
  const python = configured !== undefined && configured !== '' ? configured : path.join(REPO_ROOT, '.venv', 'bin', 'python');
  if (!existsSync(python)) {
    throw new Error(`no Python at ${python}: run tools/setup-venv.sh (npm test does) or set CPWC_PYTHON`);
  }
  return python;
}

export interface PythonRun {
  code: number | null;
  output: string;
}

/**
 * Runs the interpreter with `args` asynchronously (the test's own server keeps serving meanwhile)
 * and resolves with its exit code and its stdout and stderr together.
 */
export function runPython(args: readonly string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<PythonRun> {
  const child = spawn(pythonExecutable(), [...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const chunks: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => chunks.push(c));
  child.stderr.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output: Buffer.concat(chunks).toString('utf8') }));
  });
}
