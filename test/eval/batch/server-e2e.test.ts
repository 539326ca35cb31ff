/**
 * `cpwc-detect eval --server URL[,URL…]` against real listening cpwc-detect servers (in this
 * process; the CLI is a child process): the results must equal a local run's, with one server
 * and with two of which one has no queue and is made to answer 503 + Retry-After; servers of
 * another model must be refused.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { Detector } from '../../../src/detection/detector';
import { startTestServer, type TestServer } from '../../helpers/server';
import { ensureDistBuilt, ROOT, tempDir } from '../../helpers/eval';
import {
  CLI,
  MODEL,
  OTHER_MODEL,
  TOTAL_IMAGES,
  imagesWithHeldFile,
  parseJson,
  recordedIds,
  results,
  runEval,
  sortedDetections,
  startEval,
  until,
  type BatchJson,
  type ShardJson,
} from './batch-helpers';
import { readFileSync } from 'node:fs';

let reference: BatchJson;
let referenceOut: string;
const detectors: Detector[] = [];
let roomy: TestServer;
let tiny: TestServer;
let otherModel: TestServer;

async function serve(modelDir: string, overrides: Parameters<typeof startTestServer>[1] = {}): Promise<TestServer> {
  const detector = await Detector.load(modelDir, { intraOpThreads: 1 });
  detectors.push(detector);
  return startTestServer(detector, { modelDir, ...overrides });
}

beforeAll(async () => {
  ensureDistBuilt();
  referenceOut = join(tempDir(), 'local');
  reference = parseJson<BatchJson>(await runEval(referenceOut, ['--model', MODEL, '--allow-missing']));
  roomy = await serve(MODEL);
  tiny = await serve(MODEL, { concurrency: 1, queueSize: 0 });
  otherModel = await serve(OTHER_MODEL);
}, 120_000);

afterAll(async () => {
  for (const server of [roomy, tiny, otherModel]) await server?.shutdown();
  for (const detector of detectors) await detector.close();
});

/** Takes the server's only admission place with an upload that never finishes; returns its socket. */
async function holdOnlyPlace(server: TestServer): Promise<Socket> {
  const { port } = new URL(server.url);
  const socket = connect(Number(port), '127.0.0.1');
  socket.on('error', () => undefined);
  socket.write(
    `POST /v1/detect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n\xff\xd8`,
  );
  await until(() => server.detection.inference.admitted === 1, 'the held upload to be admitted', 10_000);
  return socket;
}

describe('eval --server with one server', () => {
  it('gives the results and the very detections.jsonl of a local run', async () => {
    const out = join(tempDir(), 'remote');
    const run = parseJson<BatchJson>(await runEval(out, ['--server', roomy.url, '--server-concurrency', '1', '--allow-missing']));
    expect(results(run)).toEqual(results(reference));
    expect(readFileSync(join(out, 'detections.jsonl'))).toEqual(readFileSync(join(referenceOut, 'detections.jsonl')));
    expect(run.run.detector).toBe(roomy.url);
    expect(run.run.images_skipped).toBe(2);
    // nine images had bytes (one of them is not an image: 415, skipped like a local run); the missing one was never sent
    expect(run.run.detector_stats.servers).toEqual([{ url: roomy.url, requests: 9, ok: 9, busy_503: 0, failures: 0 }]);
  });
});

describe('eval --server with two servers, one of them without a queue', () => {
  it('honours 503 + Retry-After and ends with the local results, no image lost or doubled', async () => {
    const hold = await holdOnlyPlace(tiny);
    const out = join(tempDir(), 'pool');
    const run = startEval(out, ['--server', `${tiny.url},${roomy.url}`, '--server-concurrency', '2', '--allow-missing']);
    await until(
      () => run.stderr().includes(`eval: ${tiny.url}/v1/detect answered 503 QUEUE_FULL; it gets no request for`),
      'a 503 from the queueless server',
    );
    hold.destroy();
    const json = parseJson<BatchJson>(await run.done);
    expect(results(json)).toEqual(results(reference));
    expect(sortedDetections(out)).toEqual(sortedDetections(referenceOut));
    expect([...recordedIds(out)].sort((a, b) => a - b)).toEqual(Array.from({ length: TOTAL_IMAGES }, (_, i) => i + 1));
    const stats = json.run.detector_stats.servers!;
    expect(stats.map((s) => s.url)).toEqual([tiny.url, roomy.url]);
    expect(stats[0]!.busy_503).toBeGreaterThanOrEqual(1);
    expect(stats.reduce((sum, s) => sum + s.ok, 0)).toBe(9);
    expect(stats.reduce((sum, s) => sum + s.failures, 0)).toBe(0);
    expect(json.run.detector_stats.retries).toBe(stats[0]!.busy_503 + stats[1]!.busy_503);
  });
});

/** `cpwc-detect serve` as a child process (so that it can be killed), resolved once it is ready. */
async function serveChild(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [CLI, 'serve', '--model', MODEL, '--host', '127.0.0.1', '--port', '0', '--threads', '1'], {
    cwd: ROOT,
  });
  child.stderr.resume();
  let buffer = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`cpwc-detect serve exited ${code} before it was ready`)));
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      for (const line of buffer.split('\n').slice(0, -1)) {
        if (!line.startsWith('{')) continue; // the log is JSON lines; anything else is not the ready line
        const record = JSON.parse(line) as { msg?: string; url?: string };
        if (record.msg === 'ready' && record.url !== undefined) resolve(record.url);
      }
      buffer = buffer.slice(buffer.lastIndexOf('\n') + 1);
    });
  });
  return { url, child };
}

describe('eval --server when a server goes away mid-run', () => {
  it('retries its images on the others and still ends with the local results', async () => {
    const leaving = await serveChild();
    const hold = await holdOnlyPlace(tiny); // so that only `leaving` can work until it is gone
    const out = join(tempDir(), 'failover');
    // image 3 is a FIFO: the run blocks reading it while `leaving` does every other image, so an
    // image is certainly left for the killed server, whatever the machine's speed
    const images = imagesWithHeldFile('exif-rotated.jpg');
    const run = startEval(
      out,
      ['--server', `${leaving.url},${tiny.url}`, '--server-concurrency', '1', '--allow-missing'],
      process.env,
      images.dir,
    );
    await until(() => recordedIds(out).length === TOTAL_IMAGES - 1, 'every image but the held one done by the server that will be killed');
    const killed = new Promise((resolve) => leaving.child.once('exit', resolve));
    leaving.child.kill('SIGKILL');
    await killed;
    images.feed();
    await until(() => run.stderr().includes(`eval: ${leaving.url}/v1/detect: fetch failed`), 'a failed request to the killed server');
    hold.destroy();
    const json = parseJson<BatchJson>(await run.done);
    expect(results(json)).toEqual(results(reference));
    expect(sortedDetections(out)).toEqual(sortedDetections(referenceOut));
    expect([...recordedIds(out)].sort((a, b) => a - b)).toEqual(Array.from({ length: TOTAL_IMAGES }, (_, i) => i + 1));
    const [gone, stayed] = json.run.detector_stats.servers!;
    expect(gone!.failures).toBeGreaterThanOrEqual(1);
    expect(gone!.ok + stayed!.ok).toBe(9);
  });
});

describe('eval --server when requests time out', () => {
  it('retries each image, stops clearly after --server-attempts, and the run resumes', async () => {
    const out = join(tempDir(), 'timeouts');
    // the server's only slot is held, so no detection can answer: every request times out, however fast the machine
    const stalled = await serve(MODEL, { concurrency: 1, queueSize: 4 });
    let release: () => void = () => undefined;
    const held = stalled.detection.inference.limiter.run(() => new Promise<void>((resolve) => (release = resolve)));
    try {
      const failed = await runEval(out, [
        '--server',
        stalled.url,
        '--server-timeout',
        '0.001',
        '--server-attempts',
        '2',
        '--allow-missing',
      ]);
      expect(failed.code).toBe(1);
      expect(failed.stderr).toContain(
        `eval: ${stalled.url}/v1/detect: no answer within 1 ms; retrying the image (try 2 of 2), this server rests 0.25 s`,
      );
      expect(failed.stderr).toMatch(
        new RegExp(`${stalled.url}/v1/detect: no answer within 1 ms \\(the image failed 2 times, giving up\\)`),
      );
    } finally {
      release();
      await held;
      await stalled.shutdown();
    }
    const json = parseJson<BatchJson>(await runEval(out, ['--server', roomy.url, '--allow-missing']));
    expect(results(json)).toEqual(results(reference));
    expect(sortedDetections(out)).toEqual(sortedDetections(referenceOut));
  });
});

describe('eval --server and API keys', () => {
  it('sends CPWC_API_KEY as a bearer token, and stops clearly without it', async () => {
    const keyed = await serve(MODEL, { apiKeys: ['batch-key-0001'] });
    try {
      const { CPWC_API_KEY: _unset, ...environment } = process.env;
      const refused = await runEval(join(tempDir(), 'nokey'), ['--server', keyed.url, '--allow-missing'], environment);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`${keyed.url}/v1/models: HTTP 401 UNAUTHORIZED`);
      const out = join(tempDir(), 'key');
      const json = parseJson<BatchJson>(
        await runEval(out, ['--server', keyed.url, '--allow-missing'], { ...environment, CPWC_API_KEY: 'batch-key-0001' }),
      );
      expect(results(json)).toEqual(results(reference));
      expect(json.run.detector_stats.servers![0]!.ok).toBe(9);
    } finally {
      await keyed.shutdown();
    }
  });
});

describe('eval --server and the model', () => {
  it('refuses a server of another model than the run recorded in OUT', async () => {
    const run = await runEval(referenceOut, ['--server', otherModel.url, '--allow-missing']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${referenceOut} holds a run with a different model identity ({"name":"tiny-fpn"`);
    expect(run.stderr).toContain('now {"name":"tiny-c4"');
  });

  it('refuses servers that serve different models', async () => {
    const run = await runEval(join(tempDir(), 'mixed'), ['--server', `${roomy.url},${otherModel.url}`]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      new RegExp(
        `${otherModel.url} serves tiny-c4 \\(graphs [0-9a-f]{10}…, [0-9a-f]{10}…\\), ` +
          `${roomy.url} serves tiny-fpn .*: every --server must serve the same model`,
      ),
    );
  });

  it('fails clearly when a server does not answer', async () => {
    const run = await runEval(join(tempDir(), 'down'), ['--server', 'http://127.0.0.1:9', '--allow-missing']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('http://127.0.0.1:9/v1/models: no answer (fetch failed); is a cpwc-detect server running there?');
  });

  it('shares one run identity with local detection: a shard through a server, one local, merged through the server', async () => {
    const out = join(tempDir(), 'mixed-shards');
    parseJson<ShardJson>(await runEval(out, ['--server', roomy.url, '--allow-missing', '--shard', '0/2']));
    parseJson<ShardJson>(await runEval(out, ['--model', MODEL, '--allow-missing', '--shard', '1/2']));
    const merged = parseJson<BatchJson>(await runEval(out, ['--server', roomy.url, '--allow-missing']));
    expect(merged.run.shards.map((s) => s.shard)).toEqual(['0-of-2', '1-of-2']);
    expect(results(merged)).toEqual(results(reference));
    expect(sortedDetections(out)).toEqual(sortedDetections(referenceOut));
  });
});
