/**
 * Schemathesis (the Python venv's) against /openapi.json of a real listening server: every
 * route, a fixed example budget and seed, and every check that applies to this API — no 5xx, no
 * status, content type, header or body outside the document, schema-violating requests refused,
 * 405 with Allow for undocumented methods. `positive_data_acceptance` is left out: the document
 * can say "binary image" but not "a decodable image of a known class", so schema-valid bodies of
 * random bytes are rightly 415 and random `classes` are rightly 400.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Detector } from '../../src/detection/detector';
import { DEFAULT_MODEL_DIR } from '../../src/detection/model';
import { createLogger } from '../../src/server/logging';
import type { RunningServer } from '../../src/server/server';
import { fixtureModel } from '../helpers/fixture-models';
import { runPython } from '../helpers/python';
import { loadFixtureDetector, startRepositoryServer, startTestServer } from '../helpers/server';

const EXCLUDED_CHECKS = [
  'positive_data_acceptance',
  'ignored_auth',
  'use_after_free',
  'ensure_resource_availability',
  'object_level_authorization',
];
const KEY = 'schemathesis-key-0001';
let detector: Detector;
let workDir: string;

beforeAll(async () => {
  detector = await loadFixtureDetector();
  workDir = mkdtempSync(path.join(os.tmpdir(), 'cpwc-schemathesis-'));
});
afterAll(async () => {
  await detector?.close();
  rmSync(workDir, { recursive: true, force: true });
});

async function schemathesis(server: RunningServer, maxExamples: number, seed: number, headers: string[] = []): Promise<void> {
  const run = await runPython(
    [
      '-m',
      'schemathesis.cli',
      'run',
      `${server.url}/openapi.json`,
      '--checks',
      'all',
      '--exclude-checks',
      EXCLUDED_CHECKS.join(','),
      '--max-examples',
      String(maxExamples),
      '--seed',
      String(seed),
      '--workers',
      '1',
      '--generation-database',
      'none',
      '--no-color',
      '--request-timeout',
      '30',
      ...headers.flatMap((h) => ['-H', h]),
    ],
    { cwd: workDir, env: { SCHEMATHESIS_HOOKS: '' } },
  );
  if (run.code !== 0) throw new Error(`schemathesis exited ${run.code}:\n${run.output.slice(-12000)}`);
  // every operation of the served document was tested, whatever routes it has (schemathesis
  // leaves out the document's own route)
  const document = (await (await fetch(`${server.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
  const tested = Object.entries(document.paths)
    .filter(([route]) => route !== '/openapi.json')
    .map(([, item]) => item);
  const operations = tested.reduce(
    (n, item) => n + Object.keys(item).filter((k) => ['get', 'post', 'put', 'delete', 'patch', 'head', 'options'].includes(k)).length,
    0,
  );
  expect(run.output).toContain(`Tested: ${operations}`);
  const counts = /(\d+) generated, (\d+) passed/.exec(run.output);
  expect(counts).not.toBeNull();
  expect(Number(counts?.[1])).toBeGreaterThan(operations * 10);
  expect(counts?.[2]).toBe(counts?.[1]);
}

it('finds no failure on a server without keys (every route, 40 examples per operation, seed 1)', async () => {
  const server = await startTestServer(detector, { concurrency: 1, queueSize: 8 });
  try {
    await schemathesis(server, 40, 1);
    expect(server.detection.inference.admitted).toBe(0);
  } finally {
    await server.shutdown();
  }
});

it('finds no failure on a server with keys, with and without the Bearer header (seed 2)', async () => {
  const server = await startTestServer(detector, { apiKeys: [KEY], concurrency: 1, queueSize: 8 });
  try {
    await schemathesis(server, 15, 2);
    await schemathesis(server, 25, 3, [`Authorization: Bearer ${KEY}`]);
  } finally {
    await server.shutdown();
  }
});

it('finds no failure on a server with a model repository (shapes model and tiny-fpn; seed 4, 15 examples per operation)', async () => {
  // the /v2/repository/* routes answer only here: load, unload and index act on a real repository
  const root = path.join(workDir, 'repository');
  mkdirSync(root);
  symlinkSync(DEFAULT_MODEL_DIR, path.join(root, path.basename(DEFAULT_MODEL_DIR)));
  symlinkSync(fixtureModel('tiny-fpn'), path.join(root, 'tiny-fpn'));
  const server = await startRepositoryServer(
    root,
    { defaultModel: path.basename(DEFAULT_MODEL_DIR), concurrency: 1, queueSize: 8 },
    createLogger('warn', { write: () => undefined }),
  );
  try {
    await schemathesis(server, 15, 4);
    await server.detection.repository?.whenSettled();
    expect(server.detection.inference.admitted).toBe(0);
  } finally {
    await server.shutdown();
  }
});
