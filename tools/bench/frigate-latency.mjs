#!/usr/bin/env node
/**
 * Frigate's view of the server: round trips of POST /v1/vision/detection with a 320x320 JPEG in
 * the multipart field `image`, one at a time, as Frigate's deepstack detector sends them, against
 * its default `api_timeout` of 0.1 s. Starts the built CLI on 127.0.0.1 per model, warms it up,
 * prints one markdown row per model. A benchmark: never run in CI.
 *
 *   npm run build && node tools/bench/frigate-latency.mjs [--model DIR]... [--requests N] [--threads N]
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'index.js');
const FRIGATE_TIMEOUT_MS = 100;
const HELP = `Usage: node tools/bench/frigate-latency.mjs [options]

  --model DIR      model directory, repeatable (default models/shapes-cpwc-r50-fpn)
  --image FILE     image, resized to 320x320 (default the first shapes test image, else a test fixture)
  --requests N     measured requests per model, after 5 warm-up requests (default 50)
  --threads N      server CPWC_THREADS (default: the server's)
  -h, --help       show this help
`;

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function startServer(model, threads) {
  const args = [CLI, 'serve', '--model', model, '--port', '0', '--host', '127.0.0.1', '--log-level', 'info'];
  if (threads !== undefined) args.push('--threads', threads);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    let buffered = '';
    child.on('exit', (code) => reject(new Error(`the server exited with ${code} before listening`)));
    child.stdout.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      for (const line of buffered.split('\n')) {
        const match = /"url":"(http:\/\/[^"]+)"/.exec(line);
        if (match) resolve(match[1]);
      }
    });
  });
  child.stdout.resume();
  for (;;) {
    const ready = await fetch(`${url}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', resolve);
        child.kill('SIGTERM');
      }),
  };
}

async function roundTrip(url, jpeg) {
  const form = new FormData();
  form.append('image', new Blob([jpeg], { type: 'image/jpeg' }), 'image.jpg');
  const started = performance.now();
  const response = await fetch(`${url}/v1/vision/detection`, { method: 'POST', body: form });
  const answer = await response.json();
  const ms = performance.now() - started;
  if (response.status !== 200) throw new Error(`status ${response.status}: ${JSON.stringify(answer)}`);
  return { ms, inferenceMs: answer.inferenceMs };
}

async function main() {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', multiple: true },
      image: { type: 'string' },
      requests: { type: 'string' },
      threads: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  if (!existsSync(CLI)) throw new Error('dist/ is missing: run npm run build first');
  const models = values.model ?? [path.join(ROOT, 'models', 'shapes-cpwc-r50-fpn')];
  const shapes = path.join(ROOT, 'datasets', 'shapes-test', 'images', 'test_000000.jpg');
  const image = values.image ?? (existsSync(shapes) ? shapes : path.join(ROOT, 'test', 'fixtures', 'images', 'landscape.jpg'));
  const requests = Number(values.requests ?? 50);
  const jpeg = await sharp(readFileSync(image)).resize(320, 320, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer();
  console.log(`| model | requests | round trip p50 / p90 / max (ms) | inference p50 (ms) | within ${FRIGATE_TIMEOUT_MS} ms |`);
  console.log('|---|---|---|---|---|');
  for (const model of models) {
    const server = await startServer(model, values.threads);
    try {
      for (let i = 0; i < 5; i += 1) await roundTrip(server.url, jpeg);
      const samples = [];
      for (let i = 0; i < requests; i += 1) samples.push(await roundTrip(server.url, jpeg));
      const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
      const inference = samples.map((s) => s.inferenceMs).sort((a, b) => a - b);
      const within = ms.filter((v) => v <= FRIGATE_TIMEOUT_MS).length;
      const f = (v) => v.toFixed(1);
      console.log(
        `| ${path.basename(model)} | ${requests} | ${f(percentile(ms, 50))} / ${f(percentile(ms, 90))} / ` +
          `${f(ms[ms.length - 1])} | ${percentile(inference, 50)} | ${within}/${requests} |`,
      );
    } finally {
      await server.stop();
    }
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
