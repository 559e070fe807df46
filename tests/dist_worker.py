"""One process of the data-parallel test (tests/test_distributed.py starts two with `accelerate launch --cpu`).

It is `python -m artnb.train` plus two records the command does not keep: the dataset indices this process trained on
in the first epoch of each fit, and the files in the model folder once every process has returned. Usage:
`dist_worker.py REPORT_DIR <artnb-train arguments>`; each rank writes REPORT_DIR/rank<r>.json."""
import json, os, sys
from pathlib import Path

report = Path(sys.argv.pop(1))
import artnb.distributed as D

shards = []   # (is the train loader, dataset length, indices) per epoch
_get = D.ShardDL.get_idxs
def _recording_get_idxs(self):
    idxs = _get(self)
    shards.append(dict(train=bool(self.dl.shuffle), n=len(self.dataset), idxs=[int(i) for i in idxs]))
    return idxs
D.ShardDL.get_idxs = _recording_get_idxs

import artnb.training as T
results = {}
_train = T.train_model
def _keeping_train_model(*a, **kw):
    r = _train(*a, **kw); results.update(r); return r
T.train_model = _keeping_train_model

from artnb.cli import train_cli
rc = 0
try: train_cli()
except SystemExit as e: rc = e.code or 0
rank = int(os.environ.get('RANK', 0))
out = Path(results.get('out', '.'))
(report/f'rank{rank}.json').write_text(json.dumps(dict(
    rank=rank, world=int(os.environ.get('WORLD_SIZE', 1)), rc=rc, shards=shards,
    files=sorted(p.name for p in out.iterdir()) if out.is_dir() else [],
    **{k: results.get(k) for k in ('weights_sha256', 'weights_sha256_by_rank', 'processes', 'metrics', 'n_test', 'warnings')})))
sys.exit(rc)
