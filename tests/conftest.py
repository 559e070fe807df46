"""Shared pytest setup: offline, headless, small and deterministic.

Session fixtures every test file shares instead of making its own (all SYNTHETIC, artnb.synth):

- `synth`: the suite's one tiny dataset, a folder per painter (3 painters x 8 images, 40 px) with a seeded 60/40
  train/valid split of the validated items (`synth.items`, a fresh copy on each access) written to `synth.csv`,
  which lies beside the image folder `synth.root` (a CSV inside it would make the folder read as the 'csv' layout).
- `multi_model`: (learner, saved model folder) of a simple_cnn (gap head, 32 px) trained 2 epochs on `synth`'s 3 painters.
- `binary_model`: (learner, calibration, saved model folder) of the same, Synth Rothko vs other, calibrated (its
  threshold and temperature are stored in the folder).
- `onnx_model`: a copy of `binary_model`'s folder with model.onnx + onnx.json (`artnb.export.export_onnx`).

The README's test command runs the suite in two pytest-xdist worker processes (`-n 2`): each worker builds these
fixtures once, when its first test needs them (about 3 s of CPU in all: they are 40 px images and a 32 px simple_cnn;
sharing pickled learners between processes would cost more than it saves). Every test writes only below its own
temporary folders, which is what lets the workers run side by side.

They are read-only: a test that changes a model folder or the dataset copies it first; at the end of the session
the dataset and the saved model folders are checked to be unchanged, so a test that writes into them fails the run."""
import os
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# One BLAS / torch thread, here and in every process a test starts (CLIs, notebook kernels): the suite's models are tiny,
# and on a 2-core machine that also runs anything else two threads each made them up to 10x slower (measured: one S0 fit
# in 03_monet 10-19 s with 2 threads, 0.9 s with 1). Set before torch is imported; an explicit setting wins.
for _k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"): os.environ.setdefault(_k, "1")
import hashlib, shutil, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
P3 = ['Synth Mondrian', 'Synth Rothko', 'Synth Hokusai']

@pytest.fixture(scope="session")
def root(): return ROOT

@pytest.fixture(scope="session")
def venv_bin(): return BIN


def tree_digest(d) -> dict:
    "{relative path: sha256} of every file under `d`"
    d = Path(d)
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob('*')) if p.is_file()}


class Synth:
    "The shared tiny dataset: `root` (image folder), `csv` (items.csv with the split, outside `root`), `classes`, `items` (a copy)"
    def __init__(self, root, items, csv):
        self.root, self._items, self.csv, self.classes = root, items, csv, sorted(P3)
    @property
    def items(self): return self._items.copy()


def _read_only(request, *folders):
    "Check at session end that `folders` are as they were now"
    before = {str(f): tree_digest(f) for f in folders}
    def check():
        for f in folders: assert tree_digest(f) == before[str(f)], f"a test changed the shared fixture folder {f}: copy it first"
    request.addfinalizer(check)


@pytest.fixture(scope="session")
def synth(tmp_path_factory, request):
    from artnb.synth_data import make_dataset
    from artnb.data import scan, split_items
    from artnb.validate import validate
    base = tmp_path_factory.mktemp('synth')
    root = make_dataset('folder', base/'folder', size=40, n_per_class=8, seed=0, painters=P3)
    good, bad = validate(scan(root), progress=False, verbose=False)
    assert len(bad) == 0, bad.reason.tolist()
    items = split_items(good, ratios=(0.6, 0.4), seed=0)
    csv = base/'items.csv'
    items.to_csv(csv, index=False)
    _read_only(request, root)
    return Synth(root, items, csv)


@pytest.fixture(scope="session")
def multi_model(synth, tmp_path_factory, request):
    from artnb.data import art_dls
    from artnb.learner import art_learner
    from artnb.inference import save_model
    learn = art_learner(art_dls(synth.items, size=32, bs=8), 'simple_cnn', head='gap', pretrained=False)
    with learn.no_bar(), learn.no_logging(): learn.fit(2, 3e-3)
    d = save_model(learn, tmp_path_factory.mktemp('multi_model')/'m')
    _read_only(request, d)
    return learn, d


@pytest.fixture(scope="session")
def binary_model(synth, tmp_path_factory, request):
    from artnb.data import art_dls
    from artnb.learner import art_learner
    from artnb.inference import save_model, calibrate
    learn = art_learner(art_dls(synth.items, task='binary', target='Synth Rothko', size=32, bs=8), 'simple_cnn', head='gap',
                        pretrained=False)
    with learn.no_bar(), learn.no_logging(): learn.fit(2, 3e-3)
    cal = calibrate(learn)
    d = save_model(learn, tmp_path_factory.mktemp('binary_model')/'m')
    _read_only(request, d)
    return learn, cal, d


@pytest.fixture(scope="session")
def onnx_model(binary_model, tmp_path_factory, request):
    pytest.importorskip('onnxruntime')
    from artnb.export import export_onnx
    d = tmp_path_factory.mktemp('onnx_model')/'m'
    shutil.copytree(binary_model[2], d)
    export_onnx(d, n_check=2)
    _read_only(request, d)
    return d
