#!/usr/bin/env node
// Every row of README's speed tables, measured in one command, printed as the README's markdown tables and
// as JSON. Not a test. Needs the full-size models (bash tools/bench/make-bench-models.sh DIR) and dist/.
//
//   npm run bench:readme -- [--models DIR] [--rounds R] [--runs N] [--default-runs N] [--warmup N] [--json FILE]
//
// Rows: cpwc_r50_fpn and pwc_r50_fpn, fp32 and int8, at 1216x800 (DIR/<arch>-800[-int8]) and 736x480
// (DIR/<arch>-480[-int8]), then the default model models/shapes-cpwc-r50-fpn and its int8 twin; all on
// bench-pipeline.mjs's 1824x1216 photo, 2 threads for both sides. Each row is
// `bench-pipeline.mjs --model M --runs N --json --raw`, one fresh process per row and round; rounds repeat
// the whole list, so load changes hit every row alike; medians are over all runs of all rounds. PyTorch
// eager runs the same weights in fp32 for an int8 row (bench-pipeline says so on stderr). Derived: graph A
// CPWC / plain per size and precision, graph A fp32 / int8 per model and size, and graph A's GFLOP/s
// (MACs by tools/bench/graph_macs.py) against this CPU's fp32 peak (tools/bench/cpu-peak.mjs).
//
// Time: one full-size run pair (TS + torch) takes ~2.5 + 4.7 s at 1216x800 and ~1.1 + 1.5 s at 736x480 on
// the quiet 2-vCPU machine, a row's start (session creation, torch rebuild, warm-up) ~10-15 s. The defaults
// (3 rounds x 2 runs for full size, 3 x 10 for the default model, 1 warm-up) take ~12-14 minutes there;
// stdout gives the figures and the wall time.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuPeak } from './cpu-peak.mjs';
import { graphMacs } from './graph-macs.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const USAGE = `usage: node tools/bench/readme-rows.mjs [--models DIR] [--rounds R] [--runs N] [--default-runs N] [--warmup N]
                                       [--json FILE] [--python PY]
  --models DIR        full-size model directories from tools/bench/make-bench-models.sh
                      (default $CPWC_BENCH_MODELS, else /tmp/cpwc-bench-models)
  --rounds R          times the whole row list is run (default 3)
  --runs N            runs per full-size row and round (default 2)
  --default-runs N    runs per default-model row and round (default 10)
  --warmup N          warm-up runs per row and round (default 1)
  --json FILE         also write the JSON there (it is always the last line of stdout)
`;

const { values } = parseArgs({
  options: {
    models: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    runs: { type: 'string', default: '2' },
    'default-runs': { type: 'string', default: '10' },
    warmup: { type: 'string', default: '1' },
    json: { type: 'string' },
    python: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
for (const name of ['rounds', 'runs', 'default-runs', 'warmup']) {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < (name === 'warmup' ? 0 : 1)) {
    process.stderr.write(`readme-rows: --${name} must be an integer ≥ ${name === 'warmup' ? 0 : 1}, got ${values[name]}\n`);
    process.exit(2);
  }
}
const DIR = values.models ?? (process.env.CPWC_BENCH_MODELS || '/tmp/cpwc-bench-models');
const PYTHON = values.python ?? (process.env.CPWC_PYTHON || path.join(ROOT, '.venv', 'bin', 'python'));
const DEFAULT = path.join(ROOT, 'models', 'shapes-cpwc-r50-fpn');

/** The rows, in table order: full size first, then the default model. */
function rowSpecs() {
  const rows = [];
  for (const size of ['800', '480'])
    for (const arch of ['cpwc_r50_fpn', 'pwc_r50_fpn'])
      for (const precision of ['fp32', 'int8'])
        rows.push({
          arch,
          size,
          precision,
          dir: path.join(DIR, `${arch}-${size}${precision === 'int8' ? '-int8' : ''}`),
          runs: values.runs,
        });
  rows.push({ arch: 'shapes-cpwc-r50-fpn', size: 'default', precision: 'fp32', dir: DEFAULT, runs: values['default-runs'] });
  // The int8 twin does not carry the checkpoint; PyTorch rebuilds the fp32 weights from the default model's.
  rows.push({
    arch: 'shapes-cpwc-r50-fpn',
    size: 'default',
    precision: 'int8',
    dir: `${DEFAULT}-int8`,
    runs: values['default-runs'],
    checkpoint: path.join(DEFAULT, 'checkpoint.pt'),
  });
  return rows;
}

function benchRow(row) {
  const args = [path.join(ROOT, 'tools', 'bench', 'bench-pipeline.mjs'), '--model', row.dir, '--runs', row.runs];
  args.push('--warmup', values.warmup, '--json', '--raw', '--python', PYTHON);
  if (row.checkpoint) args.push('--checkpoint', row.checkpoint);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`readme-rows: bench-pipeline failed on ${row.dir} (exit ${code}):\n${err}`));
      else resolve(JSON.parse(out).models[0]);
    });
  });
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = (sorted.length - 1) / 2;
  return (sorted[Math.floor(mid)] + sorted[Math.ceil(mid)]) / 2;
}

function torchVersion() {
  try {
    return execFileSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** Medians per stage over every run of every round, and the row's derived figures. */
function summarize(row, results, peak) {
  const ts = results.flatMap((r) => r.ts_runs);
  const torch = results.flatMap((r) => r.torch_runs);
  const stage = (name) => median(ts.map((t) => t[name]));
  const outside = median(ts.map((t) => t.total - t.backbone_rpn - t.box_head));
  const outsideShare = median(ts.map((t) => (t.total - t.backbone_rpn - t.box_head) / t.total));
  const input = results[0].input;
  // The int8 graph's MACs are the fp32 graph's (quantization adds Q/DQ, no weighted op): count the fp32 graph.
  const macs = graphMacs(PYTHON, row.precision === 'int8' && row.size !== 'default' ? row.dir.replace(/-int8$/, '') : row.dir, ...input);
  const graphA = stage('backbone_rpn');
  const gflops = macs === null ? null : (2 * macs) / (graphA * 1e6);
  return {
    model: row.arch,
    dir: row.dir,
    precision: row.precision,
    input,
    runs: ts.length,
    ts_ms: {
      decode: stage('decode'),
      transform: stage('transform'),
      graph_a: graphA,
      rpn_postprocess: stage('rpn_postprocess'),
      graph_b: stage('box_head'),
      postprocess: stage('postprocess'),
      outside_graphs: outside,
      end_to_end: stage('total'),
    },
    outside_share: outsideShare,
    torch_fp32_ms: { end_to_end: median(torch) },
    speedup: median(torch) / stage('total'),
    graph_a_gmac: macs === null ? null : macs / 1e9,
    graph_a_gflops: gflops,
    graph_a_share_of_fp32_peak: gflops === null || peak === null || row.precision !== 'fp32' ? null : gflops / peak.gflops,
  };
}

function ratios(rows) {
  const find = (model, input, precision) =>
    rows.find((r) => r.model === model && r.input[0] === input[0] && r.input[1] === input[1] && r.precision === precision);
  const out = { cpwc_over_plain_graph_a: [], fp32_over_int8_graph_a: [] };
  for (const r of rows) {
    if (r.model === 'cpwc_r50_fpn') {
      const plain = find('pwc_r50_fpn', r.input, r.precision);
      if (plain) out.cpwc_over_plain_graph_a.push({ input: r.input, precision: r.precision, ratio: r.ts_ms.graph_a / plain.ts_ms.graph_a });
    }
    if (r.precision === 'int8') {
      const fp32 = find(r.model, r.input, 'fp32');
      if (fp32)
        out.fp32_over_int8_graph_a.push({
          model: r.model,
          input: r.input,
          ratio: fp32.ts_ms.graph_a / r.ts_ms.graph_a,
          end_to_end_ratio: fp32.ts_ms.end_to_end / r.ts_ms.end_to_end,
        });
    }
  }
  return out;
}

const f = (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
const size = (input) => `${input[0]}×${input[1]}`;

function markdown(report) {
  const lines = [];
  const { machine, conditions } = report;
  lines.push(
    `Machine: ${machine.cpu}, ${machine.cores} cores (cpuinfo ${machine.mhz.toFixed(0)} MHz` +
      (machine.measured_ghz === null ? '' : `, measured ${machine.measured_ghz.toFixed(2)} GHz`) +
      `), fp32 peak ${machine.fp32_peak_gflops.toFixed(0)} GFLOP/s ${machine.peak_source}; ` +
      `onnxruntime-node ${conditions.onnxruntime_node}, torch ${conditions.torch}; ${conditions.threads} threads each; ` +
      `${conditions.rounds} rounds × ${conditions.runs} runs (full size) / × ${conditions.default_runs} (default model) ` +
      `after ${conditions.warmup} warm-up per row and round; ` +
      `load average ${conditions.load_before.toFixed(1)} before, ${conditions.load_after.toFixed(1)} after; ` +
      `${(conditions.wall_s / 60).toFixed(1)} min. Median ms; PyTorch eager in fp32 for every row.`,
  );
  lines.push('');
  lines.push(
    '| model | precision | graph input | TS end to end | graph A | graph B | outside the graphs | PyTorch eager | speed-up ' +
      '| graph A GFLOP/s |',
  );
  lines.push('|---|---|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of report.rows) {
    const rate =
      r.graph_a_gflops === null
        ? '—'
        : r.graph_a_share_of_fp32_peak === null
          ? `${r.graph_a_gflops.toFixed(0)} (int8)`
          : `${r.graph_a_gflops.toFixed(0)} (${(100 * r.graph_a_share_of_fp32_peak).toFixed(0)}%)`;
    const outside = `${f(r.ts_ms.outside_graphs)} (${(100 * r.outside_share).toFixed(1)}%)`;
    const cells = [r.model, r.precision, size(r.input), f(r.ts_ms.end_to_end), f(r.ts_ms.graph_a), f(r.ts_ms.graph_b), outside];
    cells.push(f(r.torch_fp32_ms.end_to_end), `${r.speedup.toFixed(2)}×`, rate);
    lines.push(`| ${cells.join(' | ')} |`);
  }
  lines.push('');
  lines.push('| graph A ratio | graph input | precision / model | ratio |');
  lines.push('|---|---|---|---:|');
  for (const r of report.ratios.cpwc_over_plain_graph_a)
    lines.push(`| CPWC ÷ plain (time) | ${size(r.input)} | ${r.precision} | ${r.ratio.toFixed(2)}× |`);
  for (const r of report.ratios.fp32_over_int8_graph_a)
    lines.push(
      `| fp32 ÷ int8 (int8 speed-up; end to end ${r.end_to_end_ratio.toFixed(2)}×) ` +
        `| ${size(r.input)} | ${r.model} | ${r.ratio.toFixed(2)}× |`,
    );
  return lines.join('\n');
}

const specs = rowSpecs();
for (const row of specs) {
  if (!existsSync(path.join(row.dir, 'model.json'))) {
    process.stderr.write(`readme-rows: ${row.dir}/model.json not found; run: bash tools/bench/make-bench-models.sh ${DIR}\n`);
    process.exit(1);
  }
}
const started = Date.now();
const loadBefore = loadavg()[0];
const results = specs.map(() => []);
for (let round = 0; round < Number(values.rounds); round++) {
  for (const [i, row] of specs.entries()) {
    const t0 = Date.now();
    results[i].push(await benchRow(row));
    process.stderr.write(`readme-rows: round ${round + 1}, ${path.basename(row.dir)}: ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  }
}
const peak = cpuPeak();
const rows = specs.map((row, i) => summarize(row, results[i], peak));
const report = {
  machine: {
    cpu: peak?.model ?? 'unknown',
    cores: peak?.cores ?? null,
    mhz: peak?.mhz ?? 0,
    measured_ghz: peak?.measured_ghz ?? null,
    fp32_peak_gflops: peak?.gflops ?? 0,
    computed_peak_gflops: peak?.computed_gflops ?? 0,
    peak_source: peak?.source ?? 'unknown',
  },
  conditions: {
    onnxruntime_node: JSON.parse(readFileSync(path.join(ROOT, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8')).version,
    torch: torchVersion(),
    threads: 2,
    rounds: Number(values.rounds),
    runs: Number(values.runs),
    default_runs: Number(values['default-runs']),
    warmup: Number(values.warmup),
    load_before: loadBefore,
    load_after: loadavg()[0],
    wall_s: (Date.now() - started) / 1000,
  },
  rows,
  ratios: ratios(rows),
};
const json = JSON.stringify(report);
if (values.json) writeFileSync(values.json, `${json}\n`);
process.stdout.write(`${markdown(report)}\n\n${json}\n`);
