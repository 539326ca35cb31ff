"""CPWC Faster R-CNN: the CPWC layer, a CPWC ResNet-50, detector builders, plain->CPWC init and ONNX export.

Run with Debian's Python (/usr/bin/python3) from the repository root with `scripts` on sys.path, e.g.
`sys.path.insert(0, "scripts"); from cpwc.models import build_detector`.
"""
