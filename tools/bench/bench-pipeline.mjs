#!/usr/bin/env node
// Benchmark of the TypeScript pipeline against PyTorch eager (torchvision FasterRCNN, same weights, same
// pixels, same thread count), runs interleaved so both see the same machine load. Not a test.
//
//   npm run bench -- [--model DIR]... [--runs N] [--threads T] [--image FILE] [--json [--raw]] [--python PY] [--checkpoint FILE]
//   npm run bench -- --memory 200 [--model DIR] [--arena on|off] [--mem-pattern on|off] [--spinning on|off] [--arena-shrinkage on|off]
//   npm run bench -- --session-options [--model DIR] [--memory 60]
//
// Default models: DIR/cpwc_r50_fpn-800 and DIR/cpwc_r50_fpn-480 (DIR: $CPWC_BENCH_MODELS, else
// /tmp/cpwc-bench-models), the full-size cpwc_r50_fpn from seed 0 (graph inputs 1216x800 and 736x480 for the
// default image). `bash tools/bench/make-bench-models.sh [DIR]` builds them, their pwc_r50_fpn (plain)
// twins and the int8 twins of all four (speed-only: random weights, see that script), recording each
// command; it skips what exists. By hand: npm run export -- --arch cpwc_r50_fpn --seed 0 --out DIR/cpwc_r50_fpn-800
// (add --min-size 480 --max-size 800 for 736x480). PyTorch rebuilds the same weights from model.json's
// provenance (tools/bench/bench_torch.py). Needs `npm run build` (the bench script does it).
// Every README speed row at once, interleaved in rounds, as markdown tables + JSON: `npm run bench:readme`
// (tools/bench/readme-rows.mjs, on top of --json --raw; its header gives the run time).
//
// --json prints one object instead of the text report:
//   {"models": [{"dir", "name", "precision", "input": [w, h], "ts_ms": {<stage>: median, "end_to_end": median},
//                "torch_ms": {"end_to_end": median}, "speedup"}]}     (speedup = torch median / TS median)
// An int8 model directory ("precision": "int8" in model.json) is compared with PyTorch running the same
// checkpoint in fp32 (torch has no int8 path here); the text report and a note on stderr say so. When the
// checkpoint is not next to its model.json, give it with --checkpoint FILE (passed to bench_torch.py, so
// bench such a model on its own).
// The text report also gives graph A's GFLOP/s (MACs counted by tools/bench/graph_macs.py at the graph
// input, x2, over graph A's median) against this CPU's fp32 peak (tools/bench/cpu-peak.mjs says how).
// PyTorch runs under --python (default: the project's Python, tools/py.sh's rule: $CPWC_PYTHON, else
// the project venv .venv/bin/python, where `cpwc` is installed).
import { spawn, fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { cpuPeak } from './cpu-peak.mjs';
import { graphMacs } from './graph-macs.mjs';

const require = createRequire(import.meta.url);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { Detector } = require(path.join(ROOT, 'dist', 'detection', 'detector.js'));
const sharp = require('sharp');

const USAGE =
  'usage: node tools/bench/bench-pipeline.mjs [--model DIR]... [--runs N] [--warmup N] [--threads T] [--image FILE] [--json [--raw]] ' +
  '[--python PY] [--checkpoint FILE]\n' +
  '       node tools/bench/bench-pipeline.mjs --memory N [--model DIR] [--arena on|off] [--mem-pattern on|off] [--spinning on|off] ' +
  '[--arena-shrinkage on|off] [--threads T]\n' +
  '       node tools/bench/bench-pipeline.mjs --session-options [--model DIR] [--runs N] [--memory N] [--threads T]\n';

const { values } = parseArgs({
  options: {
    model: { type: 'string', multiple: true },
    runs: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    threads: { type: 'string', default: '2' },
    image: { type: 'string' },
    memory: { type: 'string' },
    arena: { type: 'string' },
    'mem-pattern': { type: 'string' },
    optimization: { type: 'string' },
    'execution-mode': { type: 'string' },
    spinning: { type: 'string' },
    'arena-shrinkage': { type: 'string' },
    'session-options': { type: 'boolean', default: false },
    'child-json': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    raw: { type: 'boolean', default: false },
    python: { type: 'string' },
    checkpoint: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const threads = Number(values.threads);
const runs = Number(values.runs);
const warmup = Number(values.warmup);
const BENCH_MODELS = process.env.CPWC_BENCH_MODELS || '/tmp/cpwc-bench-models';
const models = values.model ?? [path.join(BENCH_MODELS, 'cpwc_r50_fpn-800'), path.join(BENCH_MODELS, 'cpwc_r50_fpn-480')];
for (const dir of models) {
  if (!existsSync(path.join(dir, 'model.json'))) {
    process.stderr.write(
      `bench: ${dir}/model.json not found; build it first: bash tools/bench/make-bench-models.sh ` +
        '(see the header of tools/bench/bench-pipeline.mjs)\n',
    );
    process.exit(1);
  }
}

const PYTHON = values.python ?? (process.env.CPWC_PYTHON || path.join(ROOT, '.venv', 'bin', 'python'));

/** model.json's precision: "fp32" when it does not say. */
function precisionOf(dir) {
  return JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8')).precision ?? 'fp32';
}

const STAGES = ['decode', 'transform', 'backbone_rpn', 'rpn_postprocess', 'box_head', 'postprocess', 'total'];

function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const lo = Math.floor(position);
  const hi = Math.ceil(position);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (position - lo);
}
const median = (v) => quantile(v, 0.5);
const p95 = (v) => quantile(v, 0.95);
const ms = (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(1)).padStart(8);

function sessionOptions() {
  const flag = (name) => (values[name] === undefined ? undefined : values[name] === 'on');
  const session = {};
  if (flag('arena') !== undefined) session.enableCpuMemArena = flag('arena');
  if (flag('mem-pattern') !== undefined) session.enableMemPattern = flag('mem-pattern');
  if (values.optimization !== undefined) session.graphOptimizationLevel = values.optimization;
  if (values['execution-mode'] !== undefined) session.executionMode = values['execution-mode'];
  if (flag('spinning') !== undefined) session.intraOpSpinning = flag('spinning');
  if (flag('arena-shrinkage') !== undefined) session.arenaShrinkage = flag('arena-shrinkage');
  return session;
}

/** A real photograph, upscaled so that the full model resizes it down to a 1216x800-class input. */
async function benchImage(dir) {
  if (values.image) return values.image;
  const file = path.join(dir, 'landscape-1824x1216.jpg');
  await sharp(path.join(ROOT, 'test', 'fixtures', 'images', 'landscape.jpg'))
    .resize(1824, 1216)
    .jpeg({ quality: 90 })
    .toFile(file);
  return file;
}

/** Images of many sizes and shapes (crops and rescales of the test photographs), for the memory runs. */
async function varyingImages(dir, count) {
  const sources = ['landscape.jpg', 'portrait.jpg', 'rocket.webp', 'hubble.gif', 'grayscale.png'].map((f) =>
    path.join(ROOT, 'test', 'fixtures', 'images', f),
  );
  const files = [];
  for (let i = 0; i < Math.min(count, 24); i++) {
    const width = 160 + ((i * 397) % 1700);
    const height = 120 + ((i * 263) % 1300);
    const file = path.join(dir, `varying-${i}.jpg`);
    await sharp(sources[i % sources.length])
      .resize(width, height, { fit: 'fill' })
      .jpeg({ quality: 85 })
      .toFile(file);
    files.push(file);
  }
  return Array.from({ length: count }, (_, i) => files[i % files.length]);
}

function startTorch(modelDir) {
  const checkpoint = values.checkpoint === undefined ? [] : ['--checkpoint', values.checkpoint];
  const child = spawn(
    PYTHON,
    [path.join(ROOT, 'tools', 'bench', 'bench_torch.py'), '--model', modelDir, '--threads', String(threads), ...checkpoint, '--serve'],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
      // OMP_WAIT_POLICY=PASSIVE: torch's OpenMP threads otherwise spin after each run and slow the TypeScript
      // run interleaved after it (measured: TS decode 21 ms with spinning torch vs 7 ms without); ORT's
      // intra-op threads do not spin either (src/detection/session.ts). Overridable from the environment.
      env: { OMP_WAIT_POLICY: 'PASSIVE', ...process.env },
    },
  );
  const lines = createInterface({ input: child.stdout });
  const waiting = [];
  let exited = null;
  lines.on('line', (line) => waiting.shift()?.resolve(JSON.parse(line)));
  // bench_torch.py stops with a message on stderr (e.g. an int8 directory without its fp32 checkpoint):
  // fail the bench instead of waiting for a reply that never comes.
  child.on('exit', (code) => {
    exited = new Error(`bench: ${path.basename(modelDir)}: tools/bench/bench_torch.py exited (code ${code}); see its message above`);
    for (const waiter of waiting.splice(0)) waiter.reject(exited);
  });
  const next = () => new Promise((resolve, reject) => (exited ? reject(exited) : waiting.push({ resolve, reject })));
  return {
    ready: next(),
    run: (image) => {
      const reply = next();
      child.stdin.write(`${JSON.stringify({ image })}\n`);
      return reply;
    },
    stop: () => child.stdin.end(),
  };
}

async function latency() {
  const scratch = mkdtempSync(path.join(tmpdir(), 'cpwc-bench-'));
  try {
    const image = await benchImage(scratch);
    const bytes = readFileSync(image);
    const rows = [];
    for (const modelDir of models) {
      const detector = await Detector.load(modelDir, { intraOpThreads: threads, session: sessionOptions() });
      const torch = startTorch(modelDir);
      await torch.ready;
      for (let i = 0; i < warmup; i++) {
        await detector.detect(bytes);
        await torch.run(image);
      }
      const ts = [];
      const pt = [];
      for (let i = 0; i < runs; i++) {
        ts.push((await detector.detect(bytes)).timings_ms);
        pt.push(await torch.run(image));
      }
      const run = await detector.run(await decodeFor(bytes));
      torch.stop();
      await detector.close();
      rows.push({
        modelDir,
        name: detector.model.name,
        precision: precisionOf(modelDir),
        ts,
        pt,
        input: run.geometry.padded,
        resized: run.geometry.resized,
      });
    }
    if (values.json) printJson(rows);
    else printLatency(image, rows);
    for (const row of rows) {
      if (row.precision !== 'fp32')
        process.stderr.write(`bench: ${row.modelDir} is ${row.precision}; PyTorch ran the same checkpoint in fp32\n`);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function decodeFor(bytes) {
  const { decodeImage } = require(path.join(ROOT, 'dist', 'detection', 'image.js'));
  return decodeImage(bytes);
}

/** The --json report: medians only, one entry per model in argument order. */
function printJson(rows) {
  const models = rows.map((row) => {
    const tsMs = {};
    for (const stage of STAGES) tsMs[stage === 'total' ? 'end_to_end' : stage] = median(row.ts.map((t) => t[stage]));
    const torchEndToEnd = median(row.pt.map((t) => t.total_ms));
    return {
      dir: row.modelDir,
      name: row.name,
      precision: row.precision,
      input: [row.input.width, row.input.height],
      ts_ms: tsMs,
      torch_ms: { end_to_end: torchEndToEnd },
      speedup: torchEndToEnd / tsMs.end_to_end,
      // --raw: every run, for tools/bench/readme-rows.mjs, which pools runs over rounds.
      ...(values.raw ? { ts_runs: row.ts, torch_runs: row.pt.map((t) => t.total_ms) } : {}),
    };
  });
  process.stdout.write(`${JSON.stringify({ models })}\n`);
}

function printLatency(image, rows) {
  const peak = cpuPeak();
  const out = [];
  out.push(
    `TypeScript (onnxruntime-node ${require('onnxruntime-node/package.json').version}) vs PyTorch eager (torch via ${PYTHON}), ` +
      `${threads} threads each, ${runs} interleaved runs after ${warmup} warm-up`,
  );
  out.push(`image: ${path.basename(image)}; times in ms (median / p95)`);
  for (const row of rows) {
    const m = (stage) => median(row.ts.map((t) => t[stage]));
    const q = (stage) => p95(row.ts.map((t) => t[stage]));
    const tm = (stage) => median(row.pt.map((t) => t.stages[stage]));
    const tq = (stage) => p95(row.pt.map((t) => t.stages[stage]));
    const torchTotal = row.pt.map((t) => t.total_ms);
    const outside = row.ts.map((t) => t.total - t.backbone_rpn - t.box_head);
    const outsideShare = row.ts.map((t) => (t.total - t.backbone_rpn - t.box_head) / t.total);
    out.push('');
    out.push(
      `${path.basename(row.modelDir)}: graph input ${row.input.width}x${row.input.height} (resized ${row.resized.width}x` +
        `${row.resized.height})`,
    );
    out.push(
      `  ${'stage'.padEnd(28)}${'TS med'.padStart(8)}${'TS p95'.padStart(8)}   ${'torch stage'.padEnd(18)}${'med'.padStart(8)}` +
        `${'p95'.padStart(8)}`,
    );
    const pairs = [
      ['decode', null],
      ['transform', 'transform'],
      ['backbone_rpn (graph A)', 'backbone'],
      ['rpn_postprocess', 'rpn'],
      ['box_head (graph B)', 'roi_heads'],
      ['postprocess', 'postprocess'],
    ];
    for (const [label, torchStage] of pairs) {
      const stage = label.split(' ')[0];
      const torchPart = torchStage
        ? `${torchStage.padEnd(18)}${ms(tm(torchStage))}${ms(tq(torchStage))}`
        : `${'(pixels given)'.padEnd(18)}`;
      out.push(`  ${label.padEnd(28)}${ms(m(stage))}${ms(q(stage))}   ${torchPart}`);
    }
    out.push(
      `  ${'end to end'.padEnd(28)}${ms(m('total'))}${ms(q('total'))}   ${'end to end'.padEnd(18)}${ms(median(torchTotal))}` +
        `${ms(p95(torchTotal))}`,
    );
    out.push(
      `  speed-up, torch / TS end to end: median ${(median(torchTotal) / m('total')).toFixed(2)}x, p95 ` +
        `${(p95(torchTotal) / q('total')).toFixed(2)}x`,
    );
    out.push(
      `  outside the two graphs: median ${median(outside).toFixed(1)} ms = ${(100 * median(outsideShare)).toFixed(1)}% of a ` +
        `request (p95 ${(100 * p95(outsideShare)).toFixed(1)}%)`,
    );
    out.push(`  torch rpn+roi_heads include their graph parts; TS graph stages include the transfer to the worker thread`);
    if (row.precision !== 'fp32') out.push(`  this model is ${row.precision}; PyTorch ran the same checkpoint in fp32`);
    const macs = graphMacs(PYTHON, row.modelDir, row.input.width, row.input.height);
    if (macs !== null) {
      const gflops = (2 * macs) / (m('backbone_rpn') * 1e6);
      // An int8 graph's MACs are int8 (VNNI) operations: the fp32 peak is not their ceiling.
      const share =
        peak === null
          ? ''
          : row.precision === 'fp32'
            ? ` = ${((100 * gflops) / peak.gflops).toFixed(0)}% of this CPU's fp32 peak`
            : ` (${row.precision} operations: not comparable with the fp32 peak)`;
      out.push(
        `  graph A: ${(macs / 1e9).toFixed(1)} GMAC at ${row.input.width}x${row.input.height}, ${gflops.toFixed(0)} GFLOP/s (2 ` +
          `x MACs / graph A median)${share}`,
      );
    }
  }
  if (peak !== null) {
    out.push('');
    out.push(
      `CPU: ${peak.model}, ${peak.cores} cores; fp32 peak ${peak.gflops.toFixed(0)} GFLOP/s, ${peak.source}` +
        (peak.measured_ghz === null ? '' : ` at ${peak.measured_ghz.toFixed(2)} GHz`) +
        ` (from /proc/cpuinfo: ${peak.mhz.toFixed(0)} MHz x ${peak.perCycle} FLOP/cycle = ${peak.computed_gflops.toFixed(0)})`,
    );
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

/** Runs `count` images of varying sizes through one detector; RSS after each, in MiB. */
async function memory(modelDir, count) {
  const scratch = mkdtempSync(path.join(tmpdir(), 'cpwc-bench-mem-'));
  try {
    const files = await varyingImages(scratch, count);
    const rssAtStart = process.memoryUsage().rss;
    const detector = await Detector.load(modelDir, { intraOpThreads: threads, session: sessionOptions() });
    const rssLoaded = process.memoryUsage().rss;
    const rss = [];
    const totals = [];
    for (const file of files) {
      const result = await detector.detect(readFileSync(file));
      totals.push(result.timings_ms.total);
      rss.push(process.memoryUsage().rss);
    }
    await detector.close();
    const mib = (b) => b / 2 ** 20;
    return {
      session: sessionOptions(),
      images: count,
      rss_start_mib: mib(rssAtStart),
      rss_loaded_mib: mib(rssLoaded),
      rss_after_mib: Object.fromEntries([10, 25, 50, 100, 200, 400].filter((n) => n <= count).map((n) => [n, mib(rss[n - 1])])),
      rss_max_mib: mib(Math.max(...rss)),
      rss_last_mib: mib(rss[rss.length - 1]),
      median_total_ms: median(totals),
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function runChild(args) {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), [...args, '--child-json'], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(output)) : reject(new Error(`child exited ${code}`))));
  });
}

async function compareSessionOptions() {
  const modelDir = models[0];
  const count = String(values.memory ?? 60);
  const variants = [
    ['--arena', 'on', '--mem-pattern', 'on'],
    ['--arena', 'on', '--mem-pattern', 'off'],
    ['--arena', 'on', '--mem-pattern', 'off', '--arena-shrinkage', 'on'],
    ['--arena', 'off', '--mem-pattern', 'on'],
    ['--arena', 'off', '--mem-pattern', 'off'],
    ['--arena', 'off', '--mem-pattern', 'off', '--spinning', 'on'],
    ['--arena', 'off', '--mem-pattern', 'off', '--optimization', 'extended'],
    ['--arena', 'off', '--mem-pattern', 'off', '--execution-mode', 'parallel'],
  ];
  process.stdout.write(
    `session options on ${path.basename(modelDir)}, ${count} images of varying size, ${threads} threads, one fresh process each\n`,
  );
  for (const variant of variants) {
    const result = await runChild(['--model', modelDir, '--memory', count, '--threads', String(threads), ...variant]);
    const after = Object.entries(result.rss_after_mib)
      .map(([n, v]) => `@${n} ${v.toFixed(0)}`)
      .join(' ');
    process.stdout.write(
      `  ${variant.join(' ').padEnd(70)} median ${result.median_total_ms.toFixed(0)} ms  RSS MiB loaded ` +
        `${result.rss_loaded_mib.toFixed(0)} ${after} max ${result.rss_max_mib.toFixed(0)}\n`,
    );
  }
}

if (values['session-options']) {
  await compareSessionOptions();
} else if (values.memory !== undefined) {
  const result = await memory(models[0], Number(values.memory));
  process.stdout.write(values['child-json'] ? JSON.stringify(result) : `${JSON.stringify(result, null, 2)}\n`);
} else {
  await latency();
}
