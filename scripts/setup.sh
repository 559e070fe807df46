#!/usr/bin/env bash
# Create .venv in the repository root, install artnb's pinned dependencies and artnb itself
# (editable), and register a Jupyter kernel named "artnb". Offline-safe: every package comes from
# the configured package index; no model weights or datasets are fetched.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# pip lists every local index folder it skips; keep real errors, drop that noise
.venv/bin/python -m pip install --quiet -r requirements.txt -e ".[dev]" 2> >(grep -v "^WARNING: Location" >&2)
.venv/bin/python -m ipykernel install --user --name artnb --display-name "Python (artnb)" >/dev/null
echo "artnb: environment ready in .venv ($(.venv/bin/python -c 'import torch, fastai; print(f"torch {torch.__version__}, fastai {fastai.__version__}")'))"
