#!/usr/bin/env node
// Runs one ONNX graph in onnxruntime-node (CPU) on raw tensors, for the Python export's self-check
// (there is no Python onnxruntime here).
//
//   node tools/node/ort-run.mjs MODEL.onnx IN_DIR OUT_DIR
//
// IN_DIR/manifest.json:  {"inputs":  [{"name": "image", "shape": [1, 3, 800, 1216], "file": "image.f32"}, …]}
// OUT_DIR/manifest.json: {"outputs": [{"name": …, "shape": […], "file": "<name>.f32"}, …], "run_ms": …}
// Tensors are raw little-endian float32 (int64 inputs: "dtype": "int64", raw little-endian int64).
// Threads: ORT_THREADS (default 2).
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const ort = require('onnxruntime-node');

function toTensor(spec, bytes) {
  const dtype = spec.dtype ?? 'float32';
  const copy = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  if (dtype === 'float32') return new ort.Tensor('float32', new Float32Array(copy), spec.shape);
  if (dtype === 'int64') return new ort.Tensor('int64', new BigInt64Array(copy), spec.shape);
  throw new Error(`input ${spec.name}: unsupported dtype ${dtype}`);
}

async function main(argv) {
  if (argv.length !== 3) {
    process.stderr.write('usage: node tools/node/ort-run.mjs MODEL.onnx IN_DIR OUT_DIR\n');
    return 2;
  }
  const [modelPath, inDir, outDir] = argv;
  const manifest = JSON.parse(await readFile(path.join(inDir, 'manifest.json'), 'utf8'));
  const threads = Number(process.env.ORT_THREADS ?? '2');
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  const feeds = {};
  for (const spec of manifest.inputs) {
    feeds[spec.name] = toTensor(spec, await readFile(path.join(inDir, spec.file)));
  }
  const started = process.hrtime.bigint();
  const results = await session.run(feeds);
  const runMs = Number(process.hrtime.bigint() - started) / 1e6;
  await mkdir(outDir, { recursive: true });
  const outputs = [];
  for (const name of session.outputNames) {
    const tensor = results[name];
    if (tensor.type !== 'float32') throw new Error(`output ${name}: expected float32, got ${tensor.type}`);
    const file = `${name}.f32`;
    const data = tensor.data;
    await writeFile(path.join(outDir, file), Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    outputs.push({ name, shape: tensor.dims, file });
  }
  await writeFile(path.join(outDir, 'manifest.json'), JSON.stringify({ outputs, run_ms: runMs }, null, 1));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`ort-run: ${error.message}\n`);
    process.exitCode = 1;
  },
);
