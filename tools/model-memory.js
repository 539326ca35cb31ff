#!/usr/bin/env node
/**
 * The memory a model takes once loaded: for each model directory, a fresh Node process measures
 * its RSS with the library and sharp initialised, then loads the model, runs --inferences
 * detections of --image, and measures again (after a GC). Prints a markdown table. Then one more
 * process loads every model at once, as a server over a repository of them does.
 *
 *   node tools/model-memory.js [--image FILE] [--threads N] [--inferences N] DIR...
 *
 * Needs `npm run build` (it uses dist/).
 */
'use strict';
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const { parseArgs } = require('node:util');

const ROOT = path.join(__dirname, '..');
const HELP = `Usage: node tools/model-memory.js [options] DIR...

  --image FILE       image to detect (default test/fixtures/images/landscape.jpg)
  --threads N        ONNX Runtime intra-op threads (default 1)
  --inferences N     detections after loading, before measuring (default 3)
  -h, --help         this help
`;

const MiB = 2 ** 20;

/** Runs in the child: prints {before, after} RSS in bytes. */
async function measure(dirs, image, threads, inferences) {
  const { readFileSync } = require('node:fs');
  const { Detector } = require(path.join(ROOT, 'dist', 'detection', 'detector'));
  const bytes = readFileSync(image);
  // initialise sharp and the ONNX Runtime module before the baseline
  require('sharp');
  require('onnxruntime-node');
  global.gc();
  const before = process.memoryUsage().rss;
  const detectors = [];
  for (const dir of dirs) {
    const detector = await Detector.load(dir, { intraOpThreads: threads });
    for (let i = 0; i < inferences; i += 1) await detector.detect(bytes);
    detectors.push(detector);
  }
  global.gc();
  const after = process.memoryUsage().rss;
  for (const detector of detectors) await detector.close();
  process.stdout.write(JSON.stringify({ before, after }));
}

function run(dirs, options) {
  const out = execFileSync(
    process.execPath,
    [
      '--expose-gc',
      __filename,
      '--child',
      '--image',
      options.image,
      '--threads',
      String(options.threads),
      '--inferences',
      String(options.inferences),
      ...dirs,
    ],
    { encoding: 'utf8' },
  );
  return JSON.parse(out);
}

/** One row of the memory table: RSS before and after loading, and the difference, in MiB. */
function memoryRow(name, before, after) {
  return `| ${name} | ${(before / MiB).toFixed(1)} | ${(after / MiB).toFixed(1)} | ${((after - before) / MiB).toFixed(1)} |`;
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      image: { type: 'string', default: path.join(ROOT, 'test', 'fixtures', 'images', 'landscape.jpg') },
      threads: { type: 'string', default: '1' },
      inferences: { type: 'string', default: '3' },
      child: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || positionals.length === 0) {
    process.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  const options = { image: values.image, threads: Number(values.threads), inferences: Number(values.inferences) };
  if (values.child) {
    await measure(
      positionals.map((d) => path.resolve(d)),
      options.image,
      options.threads,
      options.inferences,
    );
    return 0;
  }
  const rows = ['| model | RSS before (MiB) | RSS loaded (MiB) | model takes (MiB) |', '|---|---:|---:|---:|'];
  const dirs = positionals.map((d) => path.resolve(d));
  for (const dir of dirs) {
    const { before, after } = run([dir], options);
    rows.push(memoryRow(path.basename(dir), before, after));
  }
  if (dirs.length > 1) {
    const { before, after } = run(dirs, options);
    rows.push(memoryRow(`all ${dirs.length} in one process`, before, after));
  }
  process.stdout.write(`${rows.join('\n')}\n`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`model-memory: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
