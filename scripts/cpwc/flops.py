"""Multiply-accumulate (MAC) counter for convolutions and linear layers, by forward hooks.

Counts what papers call "FLOPs" for ResNets: one MAC per weight use, convolutions and fully connected
layers only (norms, activations, pooling and additions are not counted).

    python -m cpwc.flops        # params and GMACs of the three ResNet-50 variants
"""

from __future__ import annotations

import argparse
import sys

import torch
from torch import Tensor, nn


def conv_macs(module: nn.Conv2d, output: Tensor) -> int:
    kh, kw = module.kernel_size
    per_output = (module.in_channels // module.groups) * kh * kw
    return output[0].numel() * per_output


def count_macs(model: nn.Module, input_size: tuple[int, int] = (224, 224)) -> tuple[int, dict[str, int]]:
    """MACs of one forward pass on a single 3-channel image, total and per module name."""
    per_module: dict[str, int] = {}
    handles: list[torch.utils.hooks.RemovableHandle] = []

    def hook_for(name: str):
        def hook(module: nn.Module, _inputs: tuple[Tensor, ...], output: Tensor) -> None:
            if isinstance(module, nn.Conv2d):
                per_module[name] = per_module.get(name, 0) + conv_macs(module, output)
            else:
                assert isinstance(module, nn.Linear)
                per_module[name] = per_module.get(name, 0) + output[0].numel() * module.in_features

        return hook

    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            handles.append(module.register_forward_hook(hook_for(name)))
    try:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, *input_size))
        model.train(was_training)
    finally:
        for handle in handles:
            handle.remove()
    return sum(per_module.values()), per_module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=224, help="square input size (default 224)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from .resnet import resnet50_cpwc

    print("variant          parameters   GMACs")
    for context in ("pwc", "cpwc_no_stage2", "cpwc"):
        model = resnet50_cpwc(context=context)
        params = sum(p.numel() for p in model.parameters())
        macs, _ = count_macs(model, (args.size, args.size))
        print(f"{context:15s} {params:11,d}  {macs / 1e9:.4f}  ({macs:,d} MACs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
