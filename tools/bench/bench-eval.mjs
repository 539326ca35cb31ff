#!/usr/bin/env node
// Times the whole `cpwc-detect eval` process (node start-up, parsing, scoring, printing) on a COCO
// case, next to the two Python references measured live on the same files: pycocotools and
// faster-coco-eval (evaluate + accumulate + summarize, loading timed apart), run by
// tools/eval/coco_reference.py with $CPWC_PYTHON or .venv/bin/python. Rounds are interleaved
// (ours, pycocotools, faster-coco-eval, ours, ...) so machine load hits all three alike.
// CPU time = user + sys: of the child process for ours (bash's `times`), time.process_time() for Python.
//
// The case: a golden case of ../shared/fixtures/coco-eval when that directory exists beside the
// repository (default case-large; stats must equal its expected.json exactly), else a synthetic one
// from test/eval/synthetic-coco.ts (--synthetic forces it; 600 images, 80 categories by default).
// Every run's stats are checked against the references (1e-12) and, for a golden case, expected.json.
//
// Usage: node tools/bench/bench-eval.mjs [--runs N] [--case case-large | --synthetic [--seed S] [--images N] [--categories N]] [--json]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FIXTURES = resolve(ROOT, '../shared/fixtures/coco-eval');
const USAGE =
  'Usage: node tools/bench/bench-eval.mjs [--runs N] [--case case-large | --synthetic [--seed S] [--images N] [--categories N]] [--json]\n';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    case: { type: 'string' },
    synthetic: { type: 'boolean', default: false },
    seed: { type: 'string', default: '1' },
    images: { type: 'string', default: '600' },
    categories: { type: 'string', default: '80' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

function positiveInteger(name) {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${values[name]}`);
  return n;
}
const runs = positiveInteger('runs');
const cli = join(ROOT, 'bin/cpwc-detect.js');
if (!existsSync(join(ROOT, 'dist/cli/eval.js'))) throw new Error('dist/ is missing: run `npm run build` first');
if (values.synthetic && values.case !== undefined) throw new Error('give --case or --synthetic, not both');
const python = process.env.CPWC_PYTHON || join(ROOT, '.venv/bin/python');

/** test/eval/synthetic-coco.ts imports nothing: transpile it with the project's TypeScript and load it. */
function loadSyntheticGenerator(dir) {
  const require = createRequire(import.meta.url);
  const ts = require('typescript');
  const source = readFileSync(join(ROOT, 'test/eval/synthetic-coco.ts'), 'utf8');
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
  });
  const file = join(dir, 'synthetic-coco.cjs');
  writeFileSync(file, outputText);
  return require(file).syntheticCoco;
}

/** { name, dir, expected?, description } of the case to time. */
function prepareCase() {
  const golden = values.case ?? 'case-large';
  if (!values.synthetic && existsSync(join(FIXTURES, golden, 'gt.json'))) {
    const dir = join(FIXTURES, golden);
    return { name: golden, dir, expected: JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) };
  }
  if (values.case !== undefined)
    throw new Error(`${join(FIXTURES, values.case)} does not exist (the golden cases live in ../shared beside the repository)`);
  const options = {
    seed: Number(values.seed),
    images: positiveInteger('images'),
    categories: positiveInteger('categories'),
    maxObjectsPerImage: 30,
  };
  if (!Number.isInteger(options.seed)) throw new Error(`--seed must be an integer, got ${values.seed}`);
  const dir = mkdtempSync(join(tmpdir(), 'bench-eval-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const data = loadSyntheticGenerator(dir)(options);
  const caseDir = join(dir, 'case');
  mkdirSync(caseDir);
  writeFileSync(join(caseDir, 'gt.json'), JSON.stringify(data.gt));
  writeFileSync(join(caseDir, 'dt.json'), JSON.stringify(data.dt));
  return { name: `synthetic seed ${options.seed}`, dir: caseDir, expected: undefined };
}

function quote(arg) {
  return `'${arg.replace(/'/g, "'\\''")}'`;
}

/** Runs `argv` as a child of bash and returns { cpu, stdout } with cpu = user + sys seconds of the child. */
function timed(argv) {
  const script = `${argv.map(quote).join(' ')} > "$OUT_FILE"; status=$?; times; exit $status`;
  const outFile = join(process.env.TMPDIR ?? '/tmp', `bench-eval-${process.pid}.out`);
  const result = spawnSync('bash', ['-c', script], { encoding: 'utf8', env: { ...process.env, OUT_FILE: outFile } });
  if (result.status !== 0) throw new Error(`${argv.join(' ')} failed (${result.status}): ${result.stderr}`);
  // `times` prints the shell's own user/sys, then its children's: "0m0.290s 0m0.010s".
  const lines = result.stdout.trim().split('\n');
  const seconds = (text) => {
    const m = /(\d+)m([\d.]+)s/.exec(text);
    return Number(m[1]) * 60 + Number(m[2]);
  };
  const [user, sys] = lines[lines.length - 1].trim().split(/\s+/).map(seconds);
  const stdout = readFileSync(outFile, 'utf8');
  rmSync(outFile);
  return { cpu: user + sys, stdout };
}

/** One evaluation by a Python reference: { cpu, load, stats, version }, or { error } when it cannot run. */
function reference(library, dir) {
  const args = [join(ROOT, 'tools/eval/coco_reference.py'), '--library', library, dir];
  const result = spawnSync(python, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.error !== undefined || result.status !== 0) {
    return { error: `${python} could not run ${library}: ${result.error?.message ?? result.stderr.trim().split('\n').pop()}` };
  }
  const report = JSON.parse(result.stdout);
  const r = report.results[0];
  if (r.error !== undefined) return { error: `${library} cannot score this case: ${r.error}` };
  return { cpu: r.cpu_seconds, load: r.load_cpu_seconds, stats: r.stats, version: report.versions[library] };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function maxDifference(a, b) {
  return Math.max(...a.map((v, i) => Math.abs(v - b[i])));
}

const LIBRARIES = ['pycocotools', 'faster-coco-eval'];
const target = prepareCase();
const gt = JSON.parse(readFileSync(join(target.dir, 'gt.json'), 'utf8'));
const detections = JSON.parse(readFileSync(join(target.dir, 'dt.json'), 'utf8')).length;
const argv = [
  process.execPath,
  cli,
  'eval',
  '--annotations',
  join(target.dir, 'gt.json'),
  '--detections',
  join(target.dir, 'dt.json'),
  '--json',
];
timed(argv); // warm the page cache

const samples = [];
const refs = Object.fromEntries(LIBRARIES.map((l) => [l, { cpu: [], load: [], version: undefined, error: undefined, maxDiff: 0 }]));
let stats;
for (let i = 0; i < runs; i++) {
  const { cpu, stdout } = timed(argv);
  stats = JSON.parse(stdout).stats;
  if (target.expected !== undefined && JSON.stringify(stats) !== JSON.stringify(target.expected.stats))
    throw new Error('stats differ from expected.json');
  samples.push(cpu);
  for (const library of LIBRARIES) {
    const ref = refs[library];
    if (ref.error !== undefined) continue;
    const r = reference(library, target.dir);
    if (r.error !== undefined) {
      ref.error = r.error;
      continue;
    }
    ref.maxDiff = Math.max(ref.maxDiff, maxDifference(stats, r.stats));
    if (!(ref.maxDiff <= 1e-12)) throw new Error(`stats differ from ${library} by ${ref.maxDiff}`);
    ref.cpu.push(r.cpu);
    ref.load.push(r.load);
    ref.version = r.version;
  }
}
const nodeStartup = median(Array.from({ length: Math.min(runs, 5) }, () => timed([process.execPath, '-e', '']).cpu));
const ours = median(samples);
const summary = (library) => {
  const ref = refs[library];
  if (ref.error !== undefined) return { error: ref.error };
  const cpu = median(ref.cpu);
  return {
    version: ref.version,
    cpu_seconds_median: cpu,
    load_cpu_seconds_median: median(ref.load),
    max_stat_difference: ref.maxDiff,
    speedup: cpu / ours,
  };
};
const result = {
  case: target.name,
  images: gt.images.length,
  gt_annotations: gt.annotations.length,
  detections,
  runs,
  cpu_seconds_median: ours,
  cpu_seconds_min: Math.min(...samples),
  cpu_seconds_max: Math.max(...samples),
  node_startup_cpu_seconds: nodeStartup,
  pycocotools: summary('pycocotools'),
  faster_coco_eval: summary('faster-coco-eval'),
};
if (values.json) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else {
  const row = (label, r) =>
    r.error !== undefined
      ? `  ${label.padEnd(26)} not measured: ${r.error}`
      : `  ${`${label} ${r.version}`.padEnd(26)} ${r.cpu_seconds_median.toFixed(3).padStart(8)} s   ` +
        `(loading ${r.load_cpu_seconds_median.toFixed(3)} s more)   ` +
        `${r.speedup >= 1 ? `ours uses ${r.speedup.toFixed(1)}x less CPU` : `ours uses ${(1 / r.speedup).toFixed(1)}x more CPU`}; ` +
        `stats within ${r.max_stat_difference.toExponential(1)}`;
  process.stdout.write(
    [
      `COCO bbox eval on ${target.name}: ${result.images} images, ${result.gt_annotations} GT, ${detections} detections; ` +
        `user+sys CPU, median of ${runs} interleaved rounds`,
      `  ${'cpwc-detect eval'.padEnd(26)} ${ours.toFixed(3).padStart(8)} s   (whole process: start-up, parsing, scoring; min ` +
        `${result.cpu_seconds_min.toFixed(3)}, max ${result.cpu_seconds_max.toFixed(3)}; empty node ${nodeStartup.toFixed(3)} s)`,
      row('pycocotools', result.pycocotools),
      row('faster-coco-eval', result.faster_coco_eval),
      `  Python columns: evaluate + accumulate + summarize only.` +
        `${target.expected === undefined ? '' : ' Our stats equal expected.json in every run.'}`,
      '',
    ].join('\n'),
  );
}
