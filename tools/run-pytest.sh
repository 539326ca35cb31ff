#!/usr/bin/env bash
# Runs the Python (model-side) tests with Debian's Python, which is the one that sees
# Debian's torch/torchvision/onnx. Never skips silently: installs what is missing when
# it can (root on Debian), otherwise stops with the exact command to run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
PKGS="python3-torch python3-torchvision python3-onnx python3-pytest python3-numpy python3-pil libopenblas0-pthread"
if ! "$PY" -c 'import torch, torchvision, onnx, pytest, numpy, PIL' 2>/dev/null \
   || ! ls /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Debian packages for the model-side tests: $PKGS" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq $PKGS >/dev/null
  else
    echo "The model-side tests need Debian packages. Run:" >&2
    echo "  sudo apt-get install -y $PKGS" >&2
    exit 1
  fi
fi
exec "$PY" -m pytest -q test/python "$@"
