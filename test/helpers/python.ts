/** The Python of the project's test venv, for cross-checks against Python references and clients. */
import { existsSync } from 'node:fs';
import path from 'node:path';

/** `$CPWC_PYTHON` when set, else the project's venv: `<repo>/.venv/bin/python`; fails clearly when absent. */
export function pythonExecutable(): string {
  const configured = process.env['CPWC_PYTHON'];
  const python = configured !== undefined && configured !== '' ? configured : path.join(__dirname, '..', '..', '.venv', 'bin', 'python');
  if (!existsSync(python)) {
    throw new Error(`no Python at ${python}: run tools/setup-venv.sh (npm test does) or set CPWC_PYTHON`);
  }
  return python;
}
