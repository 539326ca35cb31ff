// Graph A's multiply-accumulates at an input size, counted on the ONNX graph by tools/bench/graph_macs.py
// (the benchmarks' GFLOP/s: tools/bench/bench-pipeline.mjs, readme-rows.mjs).
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const COUNTER = fileURLToPath(new URL('./graph_macs.py', import.meta.url));

/** MACs of `<dir>/backbone_rpn.onnx` at width × height under `python`, or null when they cannot be counted. */
export function graphMacs(python, dir, width, height) {
  try {
    const out = execFileSync(python, [COUNTER, '--graph', path.join(dir, 'backbone_rpn.onnx'), '--input', String(width), String(height)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const counted = JSON.parse(out);
    return counted.nodes_without_shape === 0 ? counted.macs : null;
  } catch {
    return null;
  }
}
