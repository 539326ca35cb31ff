/**
 * `cpwc-detect serve --model-repository DIR` as a child process (the built CLI; npm test builds
 * it first): the settings, serving two models with a chosen default, a clean SIGTERM exit, and a
 * default model that is not in the repository refused with exit 1 and a message.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/server/config';
import { fixtureModel } from '../helpers/fixture-models';
import { IMAGES, REPO_ROOT } from '../helpers/server';

const CLI = path.join(REPO_ROOT, 'dist', 'cli', 'index.js');
const landscape = readFileSync(path.join(IMAGES, 'landscape.jpg'));

interface Cli {
  exited: Promise<number | null>;
  stderr: () => string;
  /** Resolves with the first JSON log line whose msg is `message`. */
  logLine(message: string): Promise<Record<string, unknown>>;
  kill(signal: NodeJS.Signals): void;
}

function serve(args: string[], env: Record<string, string> = {}): Cli {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    const parts = stdout.split('\n');
    stdout = parts.pop() ?? '';
    for (const line of parts) lines.push(JSON.parse(line) as Record<string, unknown>);
    for (const wake of waiters.splice(0)) wake();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      for (const wake of waiters.splice(0)) wake();
      resolve(code);
    }),
  );
  return {
    exited,
    stderr: () => stderr,
    kill: (signal) => child.kill(signal),
    async logLine(message: string): Promise<Record<string, unknown>> {
      for (;;) {
        const found = lines.find((l) => l.msg === message);
        if (found !== undefined) return found;
        if (child.exitCode !== null) throw new Error(`exited ${child.exitCode} before logging '${message}': ${stderr}`);
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
  };
}

let root: string;

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' first (npm test does)`);
  root = mkdtempSync(path.join(os.tmpdir(), 'cpwc-serve-repo-'));
  cpSync(fixtureModel('tiny-fpn'), path.join(root, 'tiny-fpn'), { recursive: true });
  cpSync(fixtureModel('tiny-c4'), path.join(root, 'tiny-c4'), { recursive: true });
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('repository settings', () => {
  it('reads --model-repository, --default-model and --repository-poll-s, or their variables', () => {
    expect(loadConfig([], {}).config).toMatchObject({ modelRepository: undefined, defaultModel: undefined, repositoryPollS: 10 });
    const fromEnv = loadConfig([], { CPWC_MODEL_REPOSITORY: '/models', CPWC_DEFAULT_MODEL: 'general', CPWC_REPOSITORY_POLL_S: '0' }).config;
    expect(fromEnv).toMatchObject({ modelRepository: '/models', defaultModel: 'general', repositoryPollS: 0 });
    const fromFlags = loadConfig(['--model-repository', '/srv/m', '--default-model', 'cam', '--repository-poll-s', '30'], {
      CPWC_DEFAULT_MODEL: 'general',
    }).config;
    expect(fromFlags).toMatchObject({ modelRepository: '/srv/m', defaultModel: 'cam', repositoryPollS: 30 });
    expect(() => loadConfig(['--repository-poll-s=-1'], {})).toThrow(
      new ConfigError("--repository-poll-s must be an integer in [0, 86400], got '-1'"),
    );
    expect(() => loadConfig([], { CPWC_DEFAULT_MODEL: ' ' })).toThrow(new ConfigError('CPWC_DEFAULT_MODEL must not be empty'));
  });
});

describe('cpwc-detect serve --model-repository (child process)', () => {
  it('serves every model of the directory, the chosen default on /v1/detect, and exits 0 on SIGTERM', async () => {
    const cli = serve(['--model-repository', root, '--port', '0', '--threads', '1'], {
      CPWC_DEFAULT_MODEL: 'tiny-fpn',
      CPWC_REPOSITORY_POLL_S: '0',
    });
    try {
      const { url } = (await cli.logLine('listening; warming up')) as { url: string };
      await cli.logLine('ready');
      expect(await (await fetch(`${url}/readyz`)).json()).toEqual({ status: 'ready', model: 'tiny-fpn' });
      const index = await fetch(`${url}/v2/repository/index`, { method: 'POST' });
      expect(await index.json()).toEqual([
        { name: 'tiny-c4', version: '1', state: 'READY', reason: '' },
        { name: 'tiny-fpn', version: '1', state: 'READY', reason: '' },
      ]);
      const byDefault = (await (await fetch(`${url}/v1/detect`, { method: 'POST', body: landscape })).json()) as { model: string };
      expect(byDefault.model).toBe('tiny-fpn');
      const named = (await (await fetch(`${url}/v1/detect?model=tiny-c4`, { method: 'POST', body: landscape })).json()) as {
        model: string;
      };
      expect(named.model).toBe('tiny-c4');
      cli.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
    } finally {
      cli.kill('SIGKILL');
    }
  }, 60_000);

  it('refuses a default model the repository does not hold, with exit 1 and the models it has', async () => {
    const cli = serve(['--model-repository', root, '--port', '0', '--default-model', 'nope']);
    expect(await cli.exited).toBe(1);
    expect(cli.stderr()).toContain(
      `cannot load the model repository '${root}': the default model 'nope' is not in the repository '${root}' (models: tiny-c4, tiny-fpn)`,
    );
  }, 60_000);
});
