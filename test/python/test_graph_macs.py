"""tools/bench/graph_macs.py: the MACs behind `npm run bench`'s GFLOP/s, checked against hand counts."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOL = REPO_ROOT / "tools" / "bench" / "graph_macs.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("graph_macs", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def weight(name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name)


def small_graph(path: Path) -> None:
    """image [1, 3, H, W] -> dense 3x3 conv (3->8, stride 2) -> grouped 3x3 (8->8, 4 groups) -> depthwise 3x3
    -> global pool -> Gemm (8->5) -> MatMul (5->2). H and W are symbolic, as in the exported graphs."""
    nodes = [
        helper.make_node("Conv", ["image", "w1"], ["c1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["c1", "w2"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=4),
        helper.make_node("Conv", ["c2", "w3"], ["c3"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=8),
        helper.make_node("GlobalAveragePool", ["c3"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w4"], ["fc"], transB=1),
        helper.make_node("MatMul", ["fc", "w5"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes,
        "small",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "height", "width"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        [
            weight("w1", 8, 3, 3, 3),
            weight("w2", 8, 2, 3, 3),
            weight("w3", 8, 1, 3, 3),
            weight("w4", 5, 8),
            weight("w5", 5, 2),
        ],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_counts_dense_grouped_depthwise_gemm_and_matmul(tmp_path: Path) -> None:
    path = tmp_path / "small.onnx"
    small_graph(path)
    out_h, out_w = 20, 30  # 40x60 input, stride 2
    plane = out_h * out_w
    expected = plane * 8 * (3 * 9) + plane * 8 * (2 * 9) + plane * 8 * 9 + 5 * 8 + 2 * 5
    assert load_tool().count(str(path), 60, 40) == {"macs": expected, "nodes_counted": 5, "nodes_without_shape": 0}


def test_cli_prints_one_json_line(tmp_path: Path) -> None:
    path = tmp_path / "small.onnx"
    small_graph(path)
    out = subprocess.run(
        [sys.executable, str(TOOL), "--graph", str(path), "--input", "60", "40"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(out.stdout)["nodes_without_shape"] == 0


def test_default_model_graph_a_equals_the_pytorch_count() -> None:
    """Graph A of the default model = its PyTorch backbone + RPN head, counted by scripts/cpwc/flops.py's rule."""
    from cpwc.flops import conv_macs

    model_dir = REPO_ROOT / "models" / "shapes-cpwc-r50-fpn"
    if not (model_dir / "checkpoint.pt").is_file():
        pytest.fail(f"{model_dir}/checkpoint.pt is missing")
    from cpwc.export import load_model

    manifest = json.loads((model_dir / "model.json").read_text())
    transform = manifest["transform"]
    model, _, _ = load_model(
        model_dir / "checkpoint.pt",
        None,
        manifest["architecture"],
        manifest.get("width", 1.0),
        None,
        transform["min_size"],
        transform["max_size"],
    )
    model.eval()
    total = 0

    def hook(module: torch.nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += conv_macs(module, output)

    handles = [
        m.register_forward_hook(hook)
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Conv2d) and (name.startswith(("backbone.", "rpn.")))
    ]
    with torch.no_grad():
        features = model.backbone(torch.zeros(1, 3, 320, 480))
        model.rpn.head(list(features.values()))
    for handle in handles:
        handle.remove()
    assert load_tool().count(str(model_dir / "backbone_rpn.onnx"), 480, 320)["macs"] == total
