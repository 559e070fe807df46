#!/usr/bin/env bash
# Re-make the reference figures and metrics in figures/: each experiment notebook and the demo run
# with their defaults (synthetic data, CPU-small) through papermill, one fresh kernel per notebook,
# so no thread setting or random state leaks from one notebook into the next (nbdev-test runs them
# all in one process, which can move the last digits). Then rebuild README.md's results table.
#   bash scripts/make_figures.sh [03_monet 04_ai_vs_human ...]
set -euo pipefail
cd "$(dirname "$0")/.."
nbs=("$@")
[ ${#nbs[@]} -gt 0 ] || nbs=(03_monet 04_ai_vs_human 05_artists 06_backbones 07_artbench 08_demo)
tmp=$(mktemp -d)
for n in "${nbs[@]}"; do
  t0=$(date +%s)
  .venv/bin/papermill "nbs/$n.ipynb" "$tmp/$n.out.ipynb" --cwd nbs --no-progress-bar
  echo "figures/$n: $(( $(date +%s) - t0 )) s"
done
rm -rf "$tmp"
.venv/bin/python scripts/make_readme.py
