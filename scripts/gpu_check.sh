#!/usr/bin/env bash
# GPU check of artnb (what it does: scripts/gpu_check.py's docstring).
#   scripts/gpu_check.sh                 # on a CUDA machine: writes figures/gpu/gpu_check.json
#   scripts/gpu_check.sh --dry-run       # on CPU, tiny sizes, into a fresh temp folder (or --out DIR)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export HF_HUB_OFFLINE=1 MPLBACKEND=Agg
exec .venv/bin/python scripts/gpu_check.py "$@"
