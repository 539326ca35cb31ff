/** The Python of the project's test venv: $CPWC_PYTHON if set, else <repo>/.venv/bin/python. */
import { existsSync } from 'node:fs';
import path from 'node:path';

export function pythonExecutable(): string {
  const configured = process.env.CPWC_PYTHON;
  const python = configured !== undefined && configured !== '' ? configured : path.join(__dirname, '..', '..', '.venv', 'bin', 'python');
  if (!existsSync(python)) {
    throw new Error(`no Python for the client tests at ${python}: create the venv (pip install -c scripts/constraints.txt …, see README) or set CPWC_PYTHON`);
  }
  return python;
}
