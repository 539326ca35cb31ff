/** The Python interpreter for cross-checks against Python references (pycocotools, torchvision, …). */
import { join } from 'node:path';

/** `$CPWC_PYTHON` when set, else the project's venv: `<repo>/.venv/bin/python`. */
export function pythonExecutable(): string {
  const fromEnv = process.env['CPWC_PYTHON'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return join(__dirname, '..', '..', '.venv', 'bin', 'python');
}
