"""CPWC Faster R-CNN: the CPWC layer, a CPWC ResNet-50, detector builders, plain->CPWC init and ONNX export.

Installed with `pip install -e scripts` (tools/setup-venv.sh does it), e.g.
`from cpwc.models import build_detector`.
"""
