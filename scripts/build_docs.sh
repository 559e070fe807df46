#!/usr/bin/env bash
# Build the documentation site from the notebooks: bash scripts/build_docs.sh [OUT]   (default: _docs/)
# Offline; Sphinx + MyST-NB + Furo from the dev extra (pip install -e '.[dev]'). See scripts/build_docs.py.
# View it: .venv/bin/python -m http.server -d _docs 8000   then open http://127.0.0.1:8000/
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
exec "$PY" scripts/build_docs.py "$@"
