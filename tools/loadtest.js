#!/usr/bin/env node
/**
 * Load test of the real server (the built CLI as a child process) on the loopback interface only.
 *
 *   npm run loadtest -- [--model DIR] [--image FILE] [--concurrency-levels 1,4,16]
 *                       [--duration-s 10] [--soak-requests 2000] [--threads N] [--inference-concurrency N]
 *                       [--queue-size N]
 *
 * Measures, and prints as a markdown table: throughput and p50/p95/p99 latency at each client
 * concurrency, status counts (503s past the queue), the pipeline's own latency (the library called
 * directly, same image and threads, alternating with single HTTP requests) against the server's,
 * and the server's RSS before and after a soak of --soak-requests requests (sampled along the way).
 * Exits 1 on any 5xx other than 503 QUEUE_FULL, or on a client error.
 */
'use strict';
const { spawn } = require('node:child_process');
const { existsSync, readFileSync } = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const autocannon = require('autocannon');

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'index.js');
const DEFAULT_MODEL = path.join(ROOT, 'models', 'shapes-cpwc-r50-fpn');
const FIXTURE_MODEL = path.join(ROOT, 'test', 'fixtures', 'models', 'tiny-fpn');

const HELP = `Usage: npm run loadtest -- [options]

  --model DIR                  model directory (default models/shapes-cpwc-r50-fpn, else the tiny test fixture)
  --image FILE                 image to send (default: the first shapes test image, else test/fixtures/images/landscape.jpg)
  --concurrency-levels LIST    client concurrencies (default 1,4,16)
  --duration-s N               seconds per concurrency level (default 10)
  --max-requests N             cap on requests per level (default 2000)
  --soak-requests N            requests of the RSS soak (default 2000)
  --threads N                  server CPWC_THREADS (default: the server's)
  --inference-concurrency N    server CPWC_CONCURRENCY (default: the server's)
  --queue-size N               server CPWC_QUEUE_SIZE (default: the server's)
  --pipeline-runs N            alternating library / HTTP runs for the overhead comparison (default 30)
`;

function parseCli() {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      image: { type: 'string' },
      'concurrency-levels': { type: 'string', default: '1,4,16' },
      'duration-s': { type: 'string', default: '10' },
      'max-requests': { type: 'string', default: '2000' },
      'soak-requests': { type: 'string', default: '2000' },
      threads: { type: 'string' },
      'inference-concurrency': { type: 'string' },
      'queue-size': { type: 'string' },
      'pipeline-runs': { type: 'string', default: '30' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const positive = (name) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got '${values[name]}'`);
    return n;
  };
  const model = values.model ?? (existsSync(path.join(DEFAULT_MODEL, 'model.json')) ? DEFAULT_MODEL : FIXTURE_MODEL);
  const shapesImage = path.join(ROOT, 'datasets', 'shapes-test', 'images', 'test_000000.jpg');
  const image =
    values.image ??
    (model === DEFAULT_MODEL && existsSync(shapesImage) ? shapesImage : path.join(ROOT, 'test', 'fixtures', 'images', 'landscape.jpg'));
  return {
    model,
    image,
    levels: values['concurrency-levels'].split(',').map((s) => {
      const n = Number(s);
      if (!Number.isInteger(n) || n < 1 || n > 256) throw new Error(`bad concurrency level '${s}'`);
      return n;
    }),
    durationS: positive('duration-s'),
    maxRequests: positive('max-requests'),
    soakRequests: positive('soak-requests'),
    pipelineRuns: positive('pipeline-runs'),
    serverEnv: {
      ...(values.threads ? { CPWC_THREADS: values.threads } : {}),
      ...(values['inference-concurrency'] ? { CPWC_CONCURRENCY: values['inference-concurrency'] } : {}),
      ...(values['queue-size'] ? { CPWC_QUEUE_SIZE: values['queue-size'] } : {}),
    },
  };
}

/** Starts `cpwc-detect serve` on 127.0.0.1 and a free port; resolves once it is ready. */
function startServer(model, env) {
  const child = spawn(process.execPath, [CLI, 'serve', '--model', model, '--host', '127.0.0.1', '--port', '0'], {
    env: { PATH: process.env.PATH, ...env, CPWC_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let buffered = '';
    let url;
    let config;
    child.stdout.on('data', (chunk) => {
      buffered += chunk.toString();
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        let entry;
        try {
          entry = JSON.parse(line);
        } catch {
          continue;
        }
        if (entry.msg === 'starting') config = entry.config;
        if (entry.msg === 'listening; warming up') url = entry.url;
        if (entry.msg === 'ready') {
          if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(url)) reject(new Error(`refusing a non-loopback server address: ${url}`));
          else resolve({ child, url, config });
        }
      }
    });
    child.on('exit', (code) => reject(new Error(`the server exited with code ${code} before it was ready`)));
  });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

/** One autocannon run; latencies are collected per response so p95 is exact. */
function load(url, image, connections, { durationS, amount }) {
  const latencies = [];
  const statuses = {};
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: `${url}/v1/detect`,
        method: 'POST',
        headers: { 'content-type': 'image/jpeg' },
        body: image,
        connections,
        pipelining: 1,
        timeout: 60,
        ...(amount ? { amount } : { duration: durationS }),
      },
      (err, result) => {
        if (err) reject(err);
        else {
          latencies.sort((a, b) => a - b);
          resolve({ result, latencies, statuses });
        }
      },
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
      if (statusCode === 200) latencies.push(responseTime);
    });
  });
}

async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.slice(name.length + 1));
}

/**
 * The pipeline's own latency against the server's, measured in alternation (library call, then one
 * HTTP request, and so on) so that both see the same machine load: the library runs in this
 * process with the server's thread count, the server idles while the library runs.
 */
async function pairedLatency(url, model, image, threads, runs) {
  const { Detector } = require(path.join(ROOT, 'dist', 'detection', 'detector.js'));
  const detector = await Detector.load(model, { intraOpThreads: threads });
  const direct = [];
  const http = [];
  const insideServer = [];
  try {
    await detector.detect(image);
    for (let i = 0; i < runs; i++) {
      let started = performance.now();
      await detector.detect(image);
      direct.push(performance.now() - started);
      started = performance.now();
      const response = await fetch(`${url}/v1/detect`, { method: 'POST', body: image, headers: { 'content-type': 'image/jpeg' } });
      const body = await response.json();
      http.push(performance.now() - started);
      insideServer.push(body.timings_ms.total);
    }
  } finally {
    await detector.close();
  }
  const sort = (a) => a.sort((x, y) => x - y);
  return { direct: sort(direct), http: sort(http), insideServer: sort(insideServer) };
}

const mib = (bytes) => (bytes / 1048576).toFixed(1);
const ms = (x) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');

async function main() {
  const options = parseCli();
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' first`);
  const image = readFileSync(options.image);
  const { child, url, config } = await startServer(options.model, options.serverEnv);
  let failed = false;
  try {
    const model = JSON.parse(readFileSync(path.join(options.model, 'model.json'), 'utf8'));
    const serving = `threads ${config.intraOpThreads}, inference concurrency ${config.concurrency}, queue ${config.queueSize}`;
    process.stderr.write(`server ${url}: model ${model.name}, ${serving}\n`);

    const paired = await pairedLatency(url, options.model, image, config.intraOpThreads, options.pipelineRuns);
    const direct = paired.direct;

    const rows = [];
    for (const connections of options.levels) {
      process.stderr.write(
        `load: ${connections} concurrent clients for ${options.durationS} s (at most ${options.maxRequests} requests)\n`,
      );
      const { result, latencies, statuses } = await load(url, image, connections, { durationS: options.durationS, amount: undefined });
      const total = Object.values(statuses).reduce((a, b) => a + b, 0);
      const ok = statuses[200] ?? 0;
      const unexpected5xx = Object.entries(statuses)
        .filter(([s]) => Number(s) >= 500 && Number(s) !== 503)
        .reduce((a, [, n]) => a + n, 0);
      if (unexpected5xx > 0 || result.errors > 0 || result.timeouts > 0) failed = true;
      rows.push({
        connections,
        seconds: result.duration,
        total,
        ok,
        rejected503: statuses[503] ?? 0,
        other: total - ok - (statuses[503] ?? 0),
        okPerSecond: ok / result.duration,
        p50: percentile(latencies, 50),
        p95: percentile(latencies, 95),
        p99: percentile(latencies, 99),
        errors: result.errors + result.timeouts,
      });
      if (total >= options.maxRequests) break;
    }

    // soak: RSS before and after N sequential-ish requests (4 clients), sampled every quarter
    const rssBefore = await metric(url, 'cpwc_process_resident_memory_bytes');
    const samples = [];
    const quarter = Math.ceil(options.soakRequests / 4);
    const soakStatuses = {};
    for (let i = 0; i < 4; i++) {
      const { statuses } = await load(url, image, Math.min(4, quarter), { amount: quarter });
      for (const [s, n] of Object.entries(statuses)) soakStatuses[s] = (soakStatuses[s] ?? 0) + n;
      samples.push(await metric(url, 'cpwc_process_resident_memory_bytes'));
    }
    const soakNon200 = Object.entries(soakStatuses)
      .filter(([s]) => s !== '200')
      .reduce((a, [, n]) => a + n, 0);
    if (soakNon200 > 0) failed = true;

    const lines = [];
    lines.push(
      [
        `Model \`${model.name}\` (${model.architecture}), image ${path.relative(ROOT, options.image)} (${image.length} bytes),`,
        `server: ${config.intraOpThreads} intra-op threads, inference concurrency ${config.concurrency}, queue ${config.queueSize};`,
        `Node ${process.version}, ${require('node:os').cpus().length} CPUs, loopback.`,
      ].join(' '),
    );
    lines.push('');
    const pairedOverhead = (percentile(paired.http, 50) / percentile(direct, 50) - 1) * 100;
    const library = `p50 ${ms(percentile(direct, 50))} ms (p95 ${ms(percentile(direct, 95))})`;
    const http = `p50 ${ms(percentile(paired.http, 50))} ms (p95 ${ms(percentile(paired.http, 95))})`;
    const inside = `p50 ${ms(percentile(paired.insideServer, 50))} ms`;
    lines.push(
      [
        `Pipeline vs server, ${options.pipelineRuns} alternating runs: library alone ${library};`,
        `HTTP POST /v1/detect ${http}, of which pipeline inside the server ${inside};`,
        `HTTP p50 vs library p50: ${pairedOverhead >= 0 ? '+' : ''}${pairedOverhead.toFixed(1)} % (target: within 10 %).`,
      ].join(' '),
    );
    lines.push('');
    lines.push('| clients | requests | 200 | 503 | other | 200/s | p50 ms | p95 ms | p99 ms | client errors |');
    lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      const cells = [
        r.connections,
        r.total,
        r.ok,
        r.rejected503,
        r.other,
        r.okPerSecond.toFixed(2),
        ms(r.p50),
        ms(r.p95),
        ms(r.p99),
        r.errors,
      ];
      lines.push(`| ${cells.join(' | ')} |`);
    }
    lines.push('');
    const one = rows.find((r) => r.connections === 1);
    if (one !== undefined) {
      const overhead = (one.p50 / percentile(direct, 50) - 1) * 100;
      lines.push(`autocannon p50 at 1 client vs the library alone (separate runs): ${overhead >= 0 ? '+' : ''}${overhead.toFixed(1)} %.`);
    }
    const quarters = samples.map(mib).join(' → ');
    const soak = `RSS soak (${options.soakRequests} requests, 4 clients)`;
    lines.push(`${soak}: before ${mib(rssBefore)} MiB; after each quarter ${quarters} MiB; non-200 responses ${soakNon200}.`);
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
  if (failed) {
    process.stderr.write('loadtest: FAILED (a 5xx other than 503, a client error or timeout, or a non-200 in the soak)\n');
    process.exitCode = 1;
  }
}

main().catch((err) => {
  process.stderr.write(`loadtest: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
