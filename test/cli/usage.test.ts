/**
 * Bad usage is reported one way by every command: "cpwc-detect CMD: MESSAGE", then
 * "Run 'cpwc-detect CMD --help' for usage.", on stderr, exit status USAGE_EXIT_CODE, nothing on stdout.
 * Real processes (node dist/cli/index.js …), built first.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { USAGE_EXIT_CODE } from '../../src/cli/usage';
import { MAX_DETECTIONS_LIMIT } from '../../src/detection/limits';
import { ensureDistBuilt, ROOT } from '../helpers/eval';

const CLI = join(ROOT, 'dist/cli/index.js');
const IMAGE = join(ROOT, 'test/fixtures/images/tiny.png');

beforeAll(() => {
  ensureDistBuilt();
});

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT, env: { ...process.env, CPWC_PORT: '' } });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('usage errors: one way for every command', () => {
  it.each([
    [[], 'cpwc-detect', 'no command given (one of detect, eval, serve)'],
    [['frobnicate'], 'cpwc-detect', "unknown command 'frobnicate' (one of detect, eval, serve)"],
    [['detect'], 'cpwc-detect detect', 'no images given'],
    [['detect', '--score-threshold', 'high', IMAGE], 'cpwc-detect detect', "--score-threshold must be a number in [0, 1], got 'high'"],
    [
      ['detect', '--max-detections', String(MAX_DETECTIONS_LIMIT + 1), IMAGE],
      'cpwc-detect detect',
      `--max-detections must be an integer in [1, ${MAX_DETECTIONS_LIMIT}], got '${MAX_DETECTIONS_LIMIT + 1}'`,
    ],
    [
      ['detect', '--execution-provider', 'tpu', IMAGE],
      'cpwc-detect detect',
      "--execution-provider must be one of cpu, cuda, webgpu, got 'tpu'",
    ],
    [['detect', '--no-such-flag', IMAGE], 'cpwc-detect detect', "Unknown option '--no-such-flag'"],
    [['eval', '--bogus'], 'cpwc-detect eval', "Unknown option '--bogus'"],
    [
      ['eval', '--annotations', 'a.json'],
      'cpwc-detect eval',
      'give --detections RESULTS.json, or --images DIR --out DIR to run a model first',
    ],
    [
      ['eval', '-a', 'a.json', '--images', 'i', '--out', 'o', '--server-timeout', '0', '--server', 'http://127.0.0.1:1'],
      'cpwc-detect eval',
      "--server-timeout must be a number > 0, got '0'",
    ],
    [['eval', '-a', 'a.json', '--images', 'i', '--out', 'o', '--shard', '3/2'], 'cpwc-detect eval', '--shard'],
    [['serve', '--port', '70000'], 'cpwc-detect serve', "--port must be an integer in [0, 65535], got '70000'"],
  ])('%j', (args, name, message) => {
    const out = cli(args);
    expect(out.status).toBe(USAGE_EXIT_CODE);
    expect(out.stdout).toBe('');
    const lines = out.stderr.split('\n');
    expect(lines[0]?.startsWith(`${name}: `)).toBe(true);
    expect(lines[0]).toContain(message);
    expect(lines.slice(1)).toEqual([`Run '${name} --help' for usage.`, '']);
  });
});
