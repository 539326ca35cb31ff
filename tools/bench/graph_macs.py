#!/usr/bin/env python3
"""Multiply-accumulates of one ONNX graph at a given input size, for `npm run bench`'s GFLOP/s figure.

Counts what scripts/cpwc/flops.py counts on the PyTorch side: one MAC per weight use in Conv
(grouped and depthwise included), ConvTranspose, Gemm and MatMul; nothing for norms, activations,
pooling, additions or resizes. Shapes come from ONNX shape inference with the graph's (single) image
input fixed to [1, 3, H, W]. Prints one JSON line: {"macs", "nodes_counted", "nodes_without_shape"}.

    .venv/bin/python tools/bench/graph_macs.py \\
        --graph /tmp/cpwc-bench-models/cpwc_r50_fpn-800/backbone_rpn.onnx --input 1216 800
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from math import prod

import onnx
from onnx import shape_inference

WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def fix_input(model: onnx.ModelProto, width: int, height: int) -> None:
    """Sets the first graph input to [1, 3, height, width] (the image)."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim, value in zip(dims, (1, 3, height, width)):
        dim.Clear()
        dim.dim_value = value


def known_shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    """Every tensor's static shape that shape inference (and the initializers) determine."""
    shapes: dict[str, list[int]] = {t.name: list(t.dims) for t in model.graph.initializer}
    for info in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        dims = info.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[info.name] = [d.dim_value for d in dims]
    return shapes


def node_macs(node: onnx.NodeProto, shapes: dict[str, list[int]]) -> int | None:
    """MACs of one weighted node, or None when a shape it needs is unknown."""
    inputs: Sequence[list[int] | None] = [shapes.get(name) for name in node.input[:2]]
    output = shapes.get(node.output[0])
    if output is None or any(shape is None for shape in inputs):
        return None
    weight = inputs[1]
    if node.op_type == "Conv":
        # weight [C_out, C_in / groups, kh, kw]: every output element uses C_in/groups * kh * kw weights
        return prod(output) * prod(weight[1:])
    if node.op_type == "ConvTranspose":
        return prod(inputs[0]) * weight[1] * prod(weight[2:])
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        inner = weight[1] if trans_b else weight[0]
        return prod(output) * inner
    return prod(output) * inputs[0][-1]  # MatMul


def count(path: str, width: int, height: int) -> dict[str, int]:
    model = onnx.load(path)
    fix_input(model, width, height)
    inferred = shape_inference.infer_shapes(model, data_prop=True)
    shapes = known_shapes(inferred)
    total = counted = missing = 0
    for node in inferred.graph.node:
        if node.op_type not in WEIGHTED_OPS:
            continue
        macs = node_macs(node, shapes)
        if macs is None:
            missing += 1
        else:
            total += macs
            counted += 1
    return {"macs": total, "nodes_counted": counted, "nodes_without_shape": missing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--graph", required=True, help="ONNX file (graph A: backbone_rpn.onnx)")
    parser.add_argument(
        "--input", nargs=2, type=int, required=True, metavar=("W", "H"), help="image input width and height"
    )
    args = parser.parse_args()
    print(json.dumps(count(args.graph, args.input[0], args.input[1])))


if __name__ == "__main__":
    main()
