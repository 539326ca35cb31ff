/** Runs test/server/clients/run_clients.py (the real Python clients) on a list of cases. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { pythonExecutable } from '../../helpers/python';

export interface ClientError {
  type: string;
  status: number | string | null;
  message: string;
  /** huggingface_hub's HfHubHTTPError: the message the server sent. */
  server_message?: string | null;
}

export type ClientOutcome<T> = { result: T; error?: undefined } | { result?: undefined; error: ClientError };

/** Spawns the venv's Python (asynchronously: the server under test runs in this process). */
export function runPythonClients(cases: ReadonlyArray<Record<string, unknown>>): Promise<Array<ClientOutcome<unknown>>> {
  const script = path.join(__dirname, 'run_clients.py');
  return new Promise((resolve, reject) => {
    const child = spawn(pythonExecutable(), [script], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, HF_HUB_DISABLE_TELEMETRY: '1' },
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => stdout.push(c));
    child.stderr.on('data', (c: Buffer) => stderr.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) {
        reject(new Error(`run_clients.py exited with ${String(code)}: ${Buffer.concat(stderr).toString('utf8')}`));
        return;
      }
      resolve(JSON.parse(Buffer.concat(stdout).toString('utf8')) as Array<ClientOutcome<unknown>>);
    });
    child.stdin.end(JSON.stringify(cases));
  });
}

/** The result of a case that must have succeeded (fails with the client's error otherwise). */
export function succeeded<T>(outcome: ClientOutcome<unknown> | undefined): T {
  if (outcome === undefined) throw new Error('no outcome for this case');
  if (outcome.error !== undefined)
    throw new Error(`the client failed: ${outcome.error.type} ${String(outcome.error.status)} ${outcome.error.message}`);
  return outcome.result as T;
}

/** The error of a case that must have failed. */
export function failed(outcome: ClientOutcome<unknown> | undefined): ClientError {
  if (outcome === undefined) throw new Error('no outcome for this case');
  if (outcome.error === undefined)
    throw new Error(`the client succeeded where it must fail: ${JSON.stringify(outcome.result).slice(0, 200)}`);
  return outcome.error;
}
