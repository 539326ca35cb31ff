#!/usr/bin/env node
// Times the whole `cpwc-detect eval` process (node start-up, parsing, scoring, printing) on a
// COCO golden case and compares its CPU time with pycocotools' recorded in the fixture README.
// CPU time = user + sys of the child, read with bash's `times` (getrusage of children).
// Usage: node tools/bench/bench-eval.mjs [--runs N] [--case case-large] [--json]
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FIXTURES = resolve(ROOT, '../shared/fixtures/coco-eval');

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '7' },
    case: { type: 'string', default: 'case-large' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write('Usage: node tools/bench/bench-eval.mjs [--runs N] [--case case-large] [--json]\n');
  process.exit(0);
}
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
const caseDir = join(FIXTURES, values.case);
const cli = join(ROOT, 'bin/cpwc-detect.js');
if (!existsSync(join(ROOT, 'dist/cli/eval.js'))) throw new Error('dist/ is missing: run `npm run build` first');

/** pycocotools' CPU seconds for evaluate+accumulate+summarize, as the fixture README records it. */
function referenceSeconds() {
  const readme = readFileSync(join(FIXTURES, 'README.md'), 'utf8');
  const match = /about \*\*([\d.]+) s of CPU time\*\*/.exec(readme);
  if (match === null) throw new Error('cannot find the pycocotools reference timing in the fixture README');
  return Number(match[1]);
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
  return { cpu: user + sys, stdout: readFileSync(outFile, 'utf8') };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const argv = [process.execPath, cli, 'eval', '--annotations', join(caseDir, 'gt.json'), '--detections', join(caseDir, 'dt.json'), '--json'];
const expected = JSON.parse(readFileSync(join(caseDir, 'expected.json'), 'utf8'));
timed(argv); // warm the page cache
const samples = [];
for (let i = 0; i < runs; i++) {
  const { cpu, stdout } = timed(argv);
  const stats = JSON.parse(stdout).stats;
  if (JSON.stringify(stats) !== JSON.stringify(expected.stats)) throw new Error('stats differ from expected.json');
  samples.push(cpu);
}
const nodeStartup = median(Array.from({ length: Math.min(runs, 5) }, () => timed([process.execPath, '-e', '']).cpu));
const reference = referenceSeconds();
const ours = median(samples);
const result = {
  case: values.case,
  runs,
  cpu_seconds_median: ours,
  cpu_seconds_min: Math.min(...samples),
  cpu_seconds_max: Math.max(...samples),
  node_startup_cpu_seconds: nodeStartup,
  pycocotools_cpu_seconds: reference,
  speedup: reference / ours,
};
if (values.json) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else {
  process.stdout.write(
    [
      `cpwc-detect eval on ${values.case}: whole process (start-up, parsing, scoring), user+sys CPU, ${runs} runs`,
      `  median ${ours.toFixed(3)} s (min ${result.cpu_seconds_min.toFixed(3)}, max ${result.cpu_seconds_max.toFixed(3)}); empty node start-up ${nodeStartup.toFixed(3)} s`,
      `  pycocotools evaluate+accumulate+summarize (loading excluded, fixture README): ${reference} s`,
      `  speed-up: ${result.speedup.toFixed(1)}x (stats identical to expected.json in every run)`,
      '',
    ].join('\n'),
  );
}
