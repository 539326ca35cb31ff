#!/usr/bin/env node
// The AP effect of --fast-resize (resize while decoding, JPEG shrink-on-load; approximate) against the
// exact torchvision resize, on a dataset scaled up so that the model really has to shrink it.
// datasets/shapes-test is 320x320, which the default model (min_size 320) takes without resizing; so each
// image is upscaled by --scale (default 3.8, the factor a 1824x1216 photo is shrunk by), saved as JPEG
// quality 90, its boxes and areas scaled alike; then the same detector runs both ways over it and both
// runs are scored by src/eval (pycocotools' numbers). Speed is npm run bench's business. Not a test.
//
//   npm run build && node tools/bench/fast-resize-ap.mjs [--model DIR] [--dataset DIR] [--scale S] [--threads T]
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { Detector } = require(path.join(ROOT, 'dist', 'detection', 'detector.js'));
const { evaluateFiles } = require(path.join(ROOT, 'dist', 'eval', 'evaluate.js'));
const sharp = require('sharp');

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: path.join(ROOT, 'models', 'shapes-cpwc-r50-fpn') },
    dataset: { type: 'string', default: path.join(ROOT, 'datasets', 'shapes-test') },
    scale: { type: 'string', default: '3.8' },
    threads: { type: 'string', default: '2' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write('usage: node tools/bench/fast-resize-ap.mjs [--model DIR] [--dataset DIR] [--scale S] [--threads T]\n');
  process.exit(0);
}
const scale = Number(values.scale);
if (!(scale >= 1)) throw new Error(`--scale must be a number >= 1, got ${values.scale}`);

async function scaledDataset(dir) {
  const gt = JSON.parse(readFileSync(path.join(values.dataset, 'annotations.json'), 'utf8'));
  const images = [];
  for (const image of gt.images) {
    const width = Math.round(image.width * scale);
    const height = Math.round(image.height * scale);
    const file = `${path.parse(image.file_name).name}.jpg`;
    await sharp(path.join(values.dataset, 'images', image.file_name))
      .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
      .jpeg({ quality: 90 })
      .toFile(path.join(dir, file));
    images.push({ ...image, file_name: file, width, height, sx: width / image.width, sy: height / image.height });
  }
  const byId = new Map(images.map((i) => [i.id, i]));
  const annotations = gt.annotations.map((a) => {
    const { sx, sy } = byId.get(a.image_id);
    const [x, y, w, h] = a.bbox;
    return { ...a, bbox: [x * sx, y * sy, w * sx, h * sy], area: a.area * sx * sy };
  });
  const file = path.join(dir, 'annotations.json');
  writeFileSync(file, JSON.stringify({ ...gt, images: images.map(({ sx, sy, ...i }) => i), annotations }));
  return { file, images, categories: gt.categories };
}

async function runOnce(dir, dataset, fastResize) {
  const detector = await Detector.load(values.model, { intraOpThreads: Number(values.threads), fastResize });
  const categoryOf = new Map(dataset.categories.map((c) => [c.name, c.id]));
  const results = [];
  try {
    for (const image of dataset.images) {
      const result = await detector.detect(readFileSync(path.join(dir, image.file_name)), { scoreThreshold: 0 });
      for (const d of result.detections) {
        const { xmin, ymin, xmax, ymax } = d.box;
        results.push({
          image_id: image.id,
          category_id: categoryOf.get(d.label),
          bbox: [xmin, ymin, xmax - xmin, ymax - ymin],
          score: d.score,
        });
      }
    }
  } finally {
    await detector.close();
  }
  const file = path.join(dir, `results-${fastResize ? 'fast' : 'exact'}.json`);
  writeFileSync(file, JSON.stringify(results));
  const stats = evaluateFiles(dataset.file, file).summary.stats;
  return { stats, detections: results.length };
}

const scratch = mkdtempSync(path.join(tmpdir(), 'cpwc-fast-resize-'));
try {
  const dataset = await scaledDataset(scratch);
  const exact = await runOnce(scratch, dataset, false);
  const fast = await runOnce(scratch, dataset, true);
  const report = {
    model: path.basename(values.model),
    dataset: `${path.basename(values.dataset)} x${scale} (${dataset.images[0].width}x${dataset.images[0].height} JPEG q90)`,
    exact: { ap: exact.stats[0], ap50: exact.stats[1], ap75: exact.stats[2], detections: exact.detections },
    fast_resize: { ap: fast.stats[0], ap50: fast.stats[1], ap75: fast.stats[2], detections: fast.detections },
    ap_change: fast.stats[0] - exact.stats[0],
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
