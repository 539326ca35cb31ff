/**
 * A real listening server over a temporary model repository of three models (the shipped
 * shapes-cpwc-r50-fpn, the default, and the tiny-fpn / tiny-c4 fixtures): routing by name, and
 * adding, replacing (directory copy + rename, symlink swap) and removing models while a bounded
 * stream of requests runs. Reloads are triggered through the Triton repository API (polling off),
 * so every step is deterministic; the one polling test waits on the observable state.
 * A new version is told apart by its class labels: the copies rename every class in model.json.
 */
import { cpSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DestinationStream } from 'pino';
import { Detector } from '../../src/detection/detector';
import { DEFAULT_MODEL_DIR } from '../../src/detection/model';
import type { ServerConfig } from '../../src/server/config';
import { createLogger } from '../../src/server/logging';
import type { ModelStatus } from '../../src/server/model-catalog';
import { ModelRepository } from '../../src/server/model-repository';
import { startServer, type RunningServer } from '../../src/server/server';
import { fixtureModel } from '../helpers/fixture-models';
import { IMAGES, metricValue, multipart, startRepositoryServer, testConfig, waitFor, type ErrorBody } from '../helpers/server';

const landscape = readFileSync(path.join(IMAGES, 'landscape.jpg'));
const SHAPES = 'shapes-cpwc-r50-fpn';

interface DetectBody {
  model: string;
  detections: Array<{ label: string; score: number; class_id: number; box: Record<string, number> }>;
}

interface ModelsBody {
  default: string;
  models: Array<Record<string, unknown> & { name: string; state: string }>;
  repository: ModelStatus[];
}

interface RepoServer extends RunningServer {
  logs: Array<Record<string, unknown>>;
  root: string;
}

let scratch: string;

beforeAll(() => {
  scratch = mkdtempSync(path.join(os.tmpdir(), 'cpwc-repository-'));
});

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

/** A copy of model directory `from` at `to`, every class label prefixed with `tag` (none: unchanged). */
function copyModel(from: string, to: string, tag?: string, edit?: (json: Record<string, unknown>) => void): string {
  cpSync(from, to, { recursive: true, filter: (src) => !src.endsWith('checkpoint.pt') });
  const file = path.join(to, 'model.json');
  const json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown> & { classes: string[] };
  if (tag !== undefined) json.classes = json.classes.map((label, id) => (id === 0 ? label : `${tag}${label}`));
  edit?.(json);
  writeFileSync(file, JSON.stringify(json, null, 2));
  return to;
}

async function startRepoServer(root: string, overrides: Partial<ServerConfig> = {}): Promise<RepoServer> {
  const logs: Array<Record<string, unknown>> = [];
  const destination: DestinationStream = { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) };
  const running = await startRepositoryServer(root, { concurrency: 2, queueSize: 16, ...overrides }, createLogger('info', destination));
  return Object.assign(running, { logs, root });
}

function detect(server: RunningServer, query = ''): Promise<Response> {
  return fetch(`${server.url}/v1/detect?score_threshold=0${query}`, {
    method: 'POST',
    body: landscape,
    headers: { 'Content-Type': 'image/jpeg' },
  });
}

async function models(server: RunningServer): Promise<ModelsBody> {
  return (await (await fetch(`${server.url}/v1/models`)).json()) as ModelsBody;
}

function repositoryPost(server: RunningServer, route: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server.url}/v2/repository/${route}`, {
    method: 'POST',
    body: body === undefined ? undefined : JSON.stringify(body),
    headers: body === undefined ? headers : { 'Content-Type': 'application/json', ...headers },
  });
}

/**
 * Two clients sending detections of `model` back to back until `done()`, then two more each.
 * Every answer records its status, its labels, and whether it was sent after `swapped()` held.
 */
function requestStream(server: RunningServer, model: string, done: () => boolean, swapped: () => boolean) {
  const answers: Array<{ status: number; labels: string[]; afterSwap: boolean }> = [];
  const client = async (): Promise<void> => {
    let extra = 2;
    while (extra > 0) {
      if (done()) extra -= 1;
      const afterSwap = swapped();
      const response = await detect(server, `&model=${model}`);
      const body = (await response.json()) as DetectBody | ErrorBody;
      answers.push({ status: response.status, labels: 'detections' in body ? body.detections.map((d) => d.label) : [], afterSwap });
    }
  };
  return { answers, finished: Promise.all([client(), client()]) };
}

describe('a server over a repository of three models', () => {
  let server: RepoServer;
  let root: string;
  let versions: string;

  beforeAll(async () => {
    root = path.join(scratch, 'repo');
    versions = path.join(scratch, 'versions');
    cpSync(fixtureModel('tiny-fpn'), path.join(root, 'tiny-fpn'), { recursive: true });
    // tiny-c4 is a symbolic link to a version directory, as an operator swapping versions has it
    cpSync(fixtureModel('tiny-c4'), path.join(versions, 'tiny-c4-v1'), { recursive: true });
    symlinkSync(path.join(versions, 'tiny-c4-v1'), path.join(root, 'tiny-c4'));
    symlinkSync(DEFAULT_MODEL_DIR, path.join(root, SHAPES));
    // neither a hidden directory (a copy in progress) nor a directory without model.json is a model
    cpSync(fixtureModel('tiny-fpn'), path.join(root, '.copy-in-progress'), { recursive: true });
    cpSync(path.join(IMAGES), path.join(root, 'not-a-model'), { recursive: true });
    server = await startRepoServer(root);
  }, 120_000);

  afterAll(async () => {
    await server?.shutdown();
  });

  it('lists every model with its state, the default (first by name) marked', async () => {
    const body = await models(server);
    expect(body.default).toBe(SHAPES);
    expect(body.repository.map((m) => [m.name, m.state, m.error, m.default])).toEqual([
      [SHAPES, 'ready', null, true],
      ['tiny-c4', 'ready', null, false],
      ['tiny-fpn', 'ready', null, false],
    ]);
    const c4 = body.models.find((m) => m.name === 'tiny-c4');
    expect(c4).toMatchObject({ architecture: 'cpwc_r50_c4', state: 'ready', default: false });
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', model: SHAPES });
  });

  it('routes by name: ?model=, the form field model, /v1/vision/custom/{name}; the default otherwise', async () => {
    const direct = await Detector.load(fixtureModel('tiny-c4'), { intraOpThreads: 1 });
    try {
      const expected = (await direct.detect(landscape, { scoreThreshold: 0 })).detections;
      const byQuery = (await (await detect(server, '&model=tiny-c4')).json()) as DetectBody;
      expect(byQuery.model).toBe('tiny-c4');
      expect(byQuery.detections).toEqual(expected);

      const { body, contentType } = multipart([
        { name: 'image', value: landscape, filename: 'x.jpg' },
        { name: 'model', value: 'tiny-c4' },
        { name: 'score_threshold', value: '0' },
      ]);
      const byField = await fetch(`${server.url}/v1/detect`, { method: 'POST', body, headers: { 'Content-Type': contentType } });
      expect(((await byField.json()) as DetectBody).detections).toEqual(expected);

      const custom = multipart([
        { name: 'image', value: landscape, filename: 'x.jpg' },
        { name: 'min_confidence', value: '0' },
      ]);
      const deepstack = await fetch(`${server.url}/v1/vision/custom/tiny-c4`, {
        method: 'POST',
        body: custom.body,
        headers: { 'Content-Type': custom.contentType },
      });
      const predictions = ((await deepstack.json()) as { predictions: Array<{ label: string }> }).predictions;
      expect(predictions.map((p) => p.label)).toEqual(expected.map((d) => d.label));
    } finally {
      await direct.close();
    }
    const byDefault = (await (await detect(server)).json()) as DetectBody;
    expect(byDefault.model).toBe(SHAPES);
  });

  it('answers an unknown model with 404 MODEL_NOT_FOUND in each protocol’s shape', async () => {
    const native = await detect(server, '&model=nope');
    expect(native.status).toBe(404);
    expect(((await native.json()) as ErrorBody).error).toEqual({
      code: 'MODEL_NOT_FOUND',
      message: `unknown model 'nope'; models: ${SHAPES}, tiny-c4, tiny-fpn`,
    });
    const deepstack = await fetch(`${server.url}/v1/vision/custom/nope`, { method: 'POST', body: landscape });
    expect(deepstack.status).toBe(404);
    expect(await deepstack.json()).toMatchObject({ success: false, code: 404 });
    const triton = await repositoryPost(server, 'models/nope/load');
    expect(triton.status).toBe(404);
    expect(await triton.json()).toEqual({ error: `no model 'nope' in the repository '${root}'`, code: 'MODEL_NOT_FOUND' });
  });

  it('replaces a model by directory copy + rename while requests run: no failure, new answers from the new version', async () => {
    copyModel(fixtureModel('tiny-fpn'), path.join(root, '.tiny-fpn-v2'), 'v2:');
    let swapDone = false;
    let swapped = false;
    const stream = requestStream(
      server,
      'tiny-fpn',
      () => swapDone,
      () => swapped,
    );
    await waitFor(() => stream.answers.length >= 2, 30_000, 'requests before the swap');
    renameSync(path.join(root, 'tiny-fpn'), path.join(root, '.tiny-fpn-v1'));
    renameSync(path.join(root, '.tiny-fpn-v2'), path.join(root, 'tiny-fpn'));
    const index = await repositoryPost(server, 'index');
    expect(index.status).toBe(200);
    expect(await index.json()).toEqual([
      { name: SHAPES, version: '1', state: 'READY', reason: '' },
      { name: 'tiny-c4', version: '1', state: 'READY', reason: '' },
      { name: 'tiny-fpn', version: '1', state: 'READY', reason: '' },
    ]);
    swapped = true;
    await waitFor(() => stream.answers.filter((a) => a.afterSwap).length >= 2, 30_000, 'requests after the swap');
    swapDone = true;
    await stream.finished;
    expect(stream.answers.filter((a) => a.status !== 200)).toEqual([]);
    const before = stream.answers.filter((a) => !a.afterSwap);
    const after = stream.answers.filter((a) => a.afterSwap);
    expect(before.length).toBeGreaterThanOrEqual(2);
    expect(after.length).toBeGreaterThanOrEqual(4);
    for (const answer of after) {
      expect(answer.labels.length).toBeGreaterThan(0);
      expect(answer.labels.every((l) => l.startsWith('v2:'))).toBe(true);
    }
    expect(before[0]!.labels.some((l) => l.startsWith('v2:'))).toBe(false);
    expect(server.logs.some((l) => l.msg === 'model reloaded' && l.model === 'tiny-fpn')).toBe(true);
    // the old version is closed once its last request is done
    await waitFor(
      () => server.logs.some((l) => l.msg === 'previous model version closed' && l.model === 'tiny-fpn'),
      10_000,
      'the old version closed',
    );
  }, 120_000);

  it('replaces a model by a symlink swap while requests run, the same way', async () => {
    copyModel(path.join(versions, 'tiny-c4-v1'), path.join(versions, 'tiny-c4-v2'), 'c4v2:');
    let swapDone = false;
    let swapped = false;
    const stream = requestStream(
      server,
      'tiny-c4',
      () => swapDone,
      () => swapped,
    );
    await waitFor(() => stream.answers.length >= 2, 30_000, 'requests before the swap');
    symlinkSync(path.join(versions, 'tiny-c4-v2'), path.join(root, '.tiny-c4-next'));
    renameSync(path.join(root, '.tiny-c4-next'), path.join(root, 'tiny-c4'));
    const load = await repositoryPost(server, 'models/tiny-c4/load');
    expect(load.status).toBe(200);
    expect(await load.json()).toMatchObject({ name: 'tiny-c4', state: 'ready', error: null });
    swapped = true;
    await waitFor(() => stream.answers.filter((a) => a.afterSwap).length >= 2, 30_000, 'requests after the swap');
    swapDone = true;
    await stream.finished;
    expect(stream.answers.filter((a) => a.status !== 200)).toEqual([]);
    for (const answer of stream.answers.filter((a) => a.afterSwap)) {
      expect(answer.labels.length).toBeGreaterThan(0);
      expect(answer.labels.every((l) => l.startsWith('c4v2:'))).toBe(true);
    }
    await waitFor(
      () =>
        server.logs.some((l) => l.msg === 'previous model version closed' && l.realDir === realpathSync(path.join(versions, 'tiny-c4-v1'))),
      10_000,
      'the old version closed',
    );
  }, 120_000);

  it('adds a model copied under a hidden name and renamed into place, and removes one', async () => {
    copyModel(fixtureModel('tiny-c4'), path.join(root, '.camera-2'), 'cam:');
    let index = (await (await repositoryPost(server, 'index')).json()) as Array<{ name: string }>;
    expect(index.map((r) => r.name)).not.toContain('.camera-2');
    renameSync(path.join(root, '.camera-2'), path.join(root, 'camera-2'));
    index = (await (await repositoryPost(server, 'index', { ready: true })).json()) as Array<{ name: string }>;
    expect(index.map((r) => r.name)).toEqual(['camera-2', SHAPES, 'tiny-c4', 'tiny-fpn']);
    const answer = (await (await detect(server, '&model=camera-2')).json()) as DetectBody;
    expect(answer.model).toBe('camera-2');
    expect(answer.detections.every((d) => d.label.startsWith('cam:'))).toBe(true);

    renameSync(path.join(root, 'camera-2'), path.join(root, '.camera-2-removed'));
    index = (await (await repositoryPost(server, 'index')).json()) as Array<{ name: string }>;
    expect(index.map((r) => r.name)).toEqual([SHAPES, 'tiny-c4', 'tiny-fpn']);
    expect((await detect(server, '&model=camera-2')).status).toBe(404);
  }, 60_000);

  it('reports broken models beside the good ones, and a broken new version never replaces a working one', async () => {
    copyModel(fixtureModel('tiny-fpn'), path.join(root, 'bad-checksum'), undefined, (json) => {
      (json.graphs as { box_head: { sha256: string } }).box_head.sha256 = '0'.repeat(64);
    });
    cpSync(fixtureModel('tiny-fpn'), path.join(root, 'bad-json'), { recursive: true });
    writeFileSync(path.join(root, 'bad-json', 'model.json'), '{"format": "cpwc-detect-model", ');
    const index = (await (await repositoryPost(server, 'index')).json()) as Array<{ name: string; state: string; reason: string }>;
    expect(index.map((r) => [r.name, r.state])).toEqual([
      ['bad-checksum', 'UNAVAILABLE'],
      ['bad-json', 'UNAVAILABLE'],
      [SHAPES, 'READY'],
      ['tiny-c4', 'READY'],
      ['tiny-fpn', 'READY'],
    ]);
    expect(index[0]!.reason).toMatch(/box_head\.onnx has sha256 [0-9a-f]{64}, model\.json says 0{64}/);
    expect(index[1]!.reason).toMatch(/model\.json/);
    const listed = await models(server);
    expect(listed.repository.find((m) => m.name === 'bad-checksum')).toMatchObject({ state: 'failed', metadata: null });
    expect(listed.models.map((m) => m.name)).toEqual([SHAPES, 'tiny-c4', 'tiny-fpn']);
    const refused = await detect(server, '&model=bad-json');
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as ErrorBody).error.code).toBe('MODEL_NOT_READY');
    expect((await detect(server, '&model=tiny-fpn')).status).toBe(200);

    // tiny-c4's next version is corrupt: the load fails, the working version keeps answering
    copyModel(path.join(versions, 'tiny-c4-v2'), path.join(versions, 'tiny-c4-v3'), 'v3:');
    writeFileSync(path.join(versions, 'tiny-c4-v3', 'backbone_rpn.onnx'), 'not an onnx graph');
    symlinkSync(path.join(versions, 'tiny-c4-v3'), path.join(root, '.tiny-c4-next'));
    renameSync(path.join(root, '.tiny-c4-next'), path.join(root, 'tiny-c4'));
    const load = await repositoryPost(server, 'models/tiny-c4/load');
    expect(load.status).toBe(400);
    expect(await load.json()).toMatchObject({
      code: 'MODEL_LOAD_FAILED',
      error: expect.stringMatching(/^model 'tiny-c4' failed to load: MODEL_INVALID: graph .*backbone_rpn\.onnx has sha256/),
    });
    const c4 = (await models(server)).repository.find((m) => m.name === 'tiny-c4');
    expect(c4).toMatchObject({ state: 'ready', error: expect.stringMatching(/backbone_rpn\.onnx/) });
    const still = (await (await detect(server, '&model=tiny-c4')).json()) as DetectBody;
    expect(still.detections.every((d) => d.label.startsWith('c4v2:'))).toBe(true);

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metricValue(metrics, 'cpwc_model_load_failures_total{model="bad-checksum"}')).toBe(1);
    expect(metricValue(metrics, 'cpwc_model_load_failures_total{model="tiny-c4"}')).toBe(1);
    expect(metricValue(metrics, 'cpwc_model_state{model="bad-json",state="failed"}')).toBe(1);
    expect(metricValue(metrics, 'cpwc_model_state{model="tiny-c4",state="ready"}')).toBe(1);
    expect(metricValue(metrics, `cpwc_images_total{outcome="ok",model="tiny-c4"}`)).toBeGreaterThan(0);
    expect(server.logs.some((l) => l.msg === 'model failed to load' && l.model === 'tiny-c4' && l.keptVersion === true)).toBe(true);

    rmSync(path.join(root, 'bad-checksum'), { recursive: true });
    rmSync(path.join(root, 'bad-json'), { recursive: true });
    await repositoryPost(server, 'index');
  }, 60_000);

  it('refuses to unload the default model; unloads and reloads another', async () => {
    const refused = await repositoryPost(server, `models/${SHAPES}/unload`);
    expect(refused.status).toBe(409);
    expect(await refused.json()).toEqual({
      code: 'MODEL_UNLOAD_REFUSED',
      error: `model '${SHAPES}' is the default model (routes that name no model use it); it cannot be unloaded`,
    });
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);

    const unloaded = await repositoryPost(server, 'models/tiny-fpn/unload');
    expect(unloaded.status).toBe(200);
    expect(await unloaded.json()).toMatchObject({ name: 'tiny-fpn', state: 'unloaded' });
    const gone = await detect(server, '&model=tiny-fpn');
    expect(gone.status).toBe(404);
    expect(((await gone.json()) as ErrorBody).error.message).toBe(
      "model 'tiny-fpn' is unloaded (POST /v2/repository/models/tiny-fpn/load loads it)",
    );
    // a rescan leaves an unloaded model unloaded
    const index = (await (await repositoryPost(server, 'index')).json()) as Array<{ name: string; state: string; reason: string }>;
    expect(index.find((r) => r.name === 'tiny-fpn')).toEqual({ name: 'tiny-fpn', version: '1', state: 'UNAVAILABLE', reason: 'unloaded' });
    expect((await repositoryPost(server, 'models/tiny-fpn/load')).status).toBe(200);
    expect((await detect(server, '&model=tiny-fpn')).status).toBe(200);
  }, 60_000);

  it('refuses a malformed index body with a coded error', async () => {
    const response = await repositoryPost(server, 'index', { ready: 'yes' });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ code: 'INVALID_PARAMETER', error: `'ready' must be true or false, got "yes"` });
    // JSON that is not an object (null included: schemathesis found it answered 200)
    for (const body of ['null', '[]', 'true']) {
      const notObject = await fetch(`${server.url}/v2/repository/index`, {
        method: 'POST',
        body,
        headers: { 'Content-Type': 'application/json' },
      });
      expect([notObject.status, await notObject.json()]).toEqual([
        400,
        { code: 'INVALID_PARAMETER', error: 'the index request body must be a JSON object such as {"ready": true}' },
      ]);
    }
    // no body at all (tritonclient's index request) lists every model
    expect((await fetch(`${server.url}/v2/repository/index`, { method: 'POST' })).status).toBe(200);
    const notJson = await fetch(`${server.url}/v2/repository/index`, {
      method: 'POST',
      body: '{ready',
      headers: { 'Content-Type': 'application/json' },
    });
    expect([notJson.status, await notJson.json()]).toEqual([
      400,
      { code: 'BAD_REQUEST', error: 'the request body must be JSON, e.g. {"ready": true}' },
    ]);
    const large = await repositoryPost(server, 'index', { ready: true, pad: 'x'.repeat(17 * 1024) });
    expect([large.status, await large.json()]).toEqual([
      413,
      { code: 'BODY_TOO_LARGE', error: 'the index request body is larger than this server accepts (16384 bytes)' },
    ]);
  });

  it('polls: a model added to the directory is served without any request asking for it', async () => {
    server.detection.repository?.startPolling(1);
    copyModel(fixtureModel('tiny-fpn'), path.join(root, '.polled'), 'polled:');
    renameSync(path.join(root, '.polled'), path.join(root, 'polled'));
    let state: string | undefined;
    const deadline = Date.now() + 30_000;
    while (state !== 'ready' && Date.now() < deadline) {
      state = (await models(server)).repository.find((m) => m.name === 'polled')?.state;
      if (state !== 'ready') await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(state).toBe('ready');
    expect((await detect(server, '&model=polled')).status).toBe(200);
  }, 60_000);
});

describe('the repository API behind API keys', () => {
  let server: RepoServer;

  beforeAll(async () => {
    const root = path.join(scratch, 'locked');
    cpSync(fixtureModel('tiny-c4'), path.join(root, 'tiny-c4'), { recursive: true });
    server = await startRepoServer(root, { apiKeys: ['secret-key-1234'] });
  }, 60_000);

  afterAll(async () => {
    await server?.shutdown();
  });

  it('needs a key for index, load and unload; the only model is the default', async () => {
    for (const route of ['index', 'models/tiny-c4/load', 'models/tiny-c4/unload']) {
      const refused = await repositoryPost(server, route);
      expect([route, refused.status, await refused.json()]).toEqual([
        route,
        401,
        { code: 'UNAUTHORIZED', error: 'a valid API key is required (Authorization: Bearer KEY)' },
      ]);
    }
    const index = await repositoryPost(server, 'index', undefined, { Authorization: 'Bearer secret-key-1234' });
    expect(await index.json()).toEqual([{ name: 'tiny-c4', version: '1', state: 'READY', reason: '' }]);
    const ready = await fetch(`${server.url}/readyz`);
    expect(await ready.json()).toEqual({ status: 'ready', model: 'tiny-c4' });
  });
});

describe('--model DIR: a repository of one', () => {
  let server: RunningServer;
  let dir: string;

  beforeAll(async () => {
    dir = copyModel(fixtureModel('tiny-fpn'), path.join(scratch, 'single', 'renamed-dir'));
    const config = testConfig({ modelDir: dir, repositoryPollS: 0 });
    server = await startServer({
      config,
      logger: createLogger('silent'),
      processMetrics: false,
      repository: ({ inference, metrics, logger }) =>
        new ModelRepository({ single: dir, load: (d) => Detector.load(d, { intraOpThreads: 1 }), inference, metrics, logger }),
    });
    await server.detection.warmUp();
  }, 60_000);

  afterAll(async () => {
    await server?.shutdown();
  });

  it("is known by model.json's name and by its directory's, and reloads in place", async () => {
    expect(((await (await detect(server)).json()) as DetectBody).model).toBe('tiny-fpn');
    expect(((await (await detect(server, '&model=renamed-dir')).json()) as DetectBody).model).toBe('tiny-fpn');
    expect((await detect(server, '&model=tiny-c4')).status).toBe(404);
    // a new version renamed in model.json still answers under the first name
    copyModel(dir, `${dir}.next`, 'v2:', (json) => {
      json.name = 'tiny-fpn-v2';
    });
    rmSync(dir, { recursive: true });
    renameSync(`${dir}.next`, dir);
    expect((await repositoryPost(server, 'models/tiny-fpn/load')).status).toBe(200);
    const answer = (await (await detect(server)).json()) as DetectBody;
    expect(answer.model).toBe('tiny-fpn');
    expect(answer.detections.every((d) => d.label.startsWith('v2:'))).toBe(true);
    expect(await (await fetch(`${server.url}/readyz`)).json()).toEqual({ status: 'ready', model: 'tiny-fpn' });
  }, 60_000);
});

describe('one inference pool for every model; the default model removed', () => {
  let server: RepoServer;

  beforeAll(async () => {
    const root = path.join(scratch, 'pool');
    cpSync(fixtureModel('tiny-c4'), path.join(root, 'tiny-c4'), { recursive: true });
    cpSync(fixtureModel('tiny-fpn'), path.join(root, 'tiny-fpn'), { recursive: true });
    server = await startRepoServer(root, { concurrency: 1, queueSize: 1 });
  }, 60_000);

  afterAll(async () => {
    await server?.shutdown();
  });

  it("shares the slots and the queue: one model's queued request fills the queue for the other", async () => {
    const limiter = server.detection.inference.limiter;
    let release: () => void = () => undefined;
    // the one slot, held until released
    const held = limiter.run(
      () =>
        new Promise<void>((resolve) => {
          release = resolve;
        }),
    );
    await waitFor(() => limiter.state.running === 1, 5_000, 'the slot taken');
    const queued = detect(server, '&model=tiny-c4');
    await waitFor(() => limiter.state.queued === 1, 10_000, 'the tiny-c4 request queued');
    const refused = await detect(server, '&model=tiny-fpn');
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as ErrorBody).error.code).toBe('QUEUE_FULL');
    release();
    await held;
    const answer = await queued;
    expect(answer.status).toBe(200);
    expect(((await answer.json()) as DetectBody).model).toBe('tiny-c4');
  }, 60_000);

  it('reports the default model gone when its directory disappears, and ready again once it is back', async () => {
    renameSync(path.join(server.root, 'tiny-c4'), path.join(server.root, '.tiny-c4-away'));
    await repositoryPost(server, 'index');
    const gone = await fetch(`${server.url}/readyz`);
    expect(gone.status).toBe(503);
    expect(await gone.json()).toEqual({
      status: 'default_model_unavailable',
      model: 'tiny-c4',
      reason: "the default model 'tiny-c4' is not loaded",
    });
    const refused = await detect(server);
    expect(refused.status).toBe(404);
    expect(((await refused.json()) as ErrorBody).error).toEqual({
      code: 'MODEL_NOT_FOUND',
      message: "unknown model 'tiny-c4'; models: tiny-fpn",
    });
    expect((await detect(server, '&model=tiny-fpn')).status).toBe(200);

    renameSync(path.join(server.root, '.tiny-c4-away'), path.join(server.root, 'tiny-c4'));
    await repositoryPost(server, 'index');
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    expect(((await (await detect(server)).json()) as DetectBody).model).toBe('tiny-c4');
  }, 60_000);

  it('answers 503 REPOSITORY_UNREADABLE when the repository directory cannot be read, and keeps serving its models', async () => {
    const away = `${server.root}-away`;
    renameSync(server.root, away);
    try {
      const index = await repositoryPost(server, 'index');
      expect(index.status).toBe(503);
      const body = (await index.json()) as { error: string; code: string };
      expect(body.code).toBe('REPOSITORY_UNREADABLE');
      expect(body.error).toContain(`cannot read the model repository '${server.root}': `);
      expect(body.error).toContain('ENOENT: no such file or directory');
      expect((await repositoryPost(server, 'models/tiny-fpn/load')).status).toBe(503);
      expect((await detect(server, '&model=tiny-fpn')).status).toBe(200);
    } finally {
      renameSync(away, server.root);
    }
    expect((await repositoryPost(server, 'index')).status).toBe(200);
  }, 60_000);
});

describe('a speed-only int8 twin in the repository', () => {
  let server: RepoServer;

  beforeAll(async () => {
    const root = path.join(scratch, 'speed-only');
    copyModel(fixtureModel('tiny-fpn'), path.join(root, 'bench-twin'), undefined, (json) => {
      json.precision = 'int8';
      json.calibration = { method: 'Percentile', speed_only: true, self_check: { skipped: '--speed-only' } };
    });
    server = await startRepoServer(root);
  }, 120_000);

  afterAll(async () => {
    await server?.shutdown();
  });

  it('is served, said to be int8 and speed-only at /v1/models, and warned about in the log when loaded', async () => {
    const body = await models(server);
    expect(body.models.find((m) => m.name === 'bench-twin')).toMatchObject({ precision: 'int8', speed_only: true, state: 'ready' });
    const warning = server.logs.find((l) => l.level === 40 && l.model === 'bench-twin');
    expect(warning?.msg).toMatch(/speed-only int8 twin .* its detections were never checked/);
    expect((await detect(server)).status).toBe(200);
  });
});
