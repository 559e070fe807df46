"""The light install: `pip install 'artnb[onnx]'` predicts with a model.onnx without torch, fastai or timm.

scripts/light_env.py builds, offline, a virtual environment holding exactly what artnb's metadata says the `onnx` extra
needs (followed recursively through the installed distributions); `import torch` fails there. In it, the library's
`load_onnx(...).predict` and `artnb-predict --backend onnx` must give what the full install's PyTorch `Predictor` gives,
and never import torch, fastai or timm."""
import json, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest

pytest.importorskip('onnxruntime')
sys.path.insert(0, str(Path(__file__).resolve().parents[1]/'scripts'))
import light_env
from artnb.synth_data import make_dataset
from artnb.data import scan, split_items, art_dls
from artnb.learner import art_learner
from artnb.inference import save_model, load_model
from artnb.export import export_onnx

HEAVY = ('torch', 'fastai', 'timm', 'torchvision', 'scipy', 'sklearn', 'matplotlib')


@pytest.fixture(scope='module')
def light(tmp_path_factory):
    "(python of the light environment, a binary model folder with model.onnx, its image folder, the images)"
    tmp = tmp_path_factory.mktemp('light')
    root = make_dataset('folder', tmp/'paintings', n_per_class=4, size=40, seed=5, painters=['Synth Mondrian', 'Synth Rothko'])
    items = split_items(scan(root), (0.5, 0.5), seed=0)
    learn = art_learner(art_dls(items, size=(32, 24), resize='pad', bs=4), 'simple_cnn', head='gap', pretrained=False)
    learn.art.temperature, learn.art.threshold, learn.art.threshold_kind = 1.3, 0.45, 'binary'   # a stored decision rule
    d = save_model(learn, tmp/'model')
    export_onnx(d, images=list(items.path[:2]))
    return light_env.build(tmp/'venv'), d, root, sorted(map(str, items.path))


def _run(py, code, *args):
    return subprocess.run([str(py), '-c', code, *map(str, args)], capture_output=True, text=True, timeout=300)


def test_light_env_has_no_torch(light):
    py = light[0]
    r = _run(py, "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])", *HEAVY)
    assert r.returncode == 0 and r.stdout.strip() == '[]', (r.stdout, r.stderr[-1000:])


def test_library_predicts_like_pytorch_without_torch(light):
    py, d, _, paths = light
    code = ("import sys, json; from artnb.runtime import load_onnx\n"
            "p = load_onnx(sys.argv[1]); r = p.predict(sys.argv[2:], bs=3)\n"
            f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
            "print(json.dumps(dict(probs=r.probs.tolist(), labels=r.labels, heavy=heavy, t=p.temperature, thr=p.threshold)))")
    r = _run(py, code, d, *paths)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out['heavy'] == []
    want = load_model(d, device='cpu').predict(paths)
    np.testing.assert_allclose(np.array(out['probs']), want.probs, atol=1e-4)
    assert out['labels'] == want.labels and (out['t'], out['thr']) == (1.3, 0.45)


def test_cli_in_light_env(light, tmp_path):
    py, d, root, _ = light
    cli = py.parent/'artnb-predict'   # the console script, as `pip install 'artnb[onnx]'` writes it
    run = lambda *a: subprocess.run([str(cli), *map(str, a)], capture_output=True, text=True, timeout=300)
    r = run(d, root, '--out', tmp_path/'p.csv', '--backend', 'onnx', '--topk', '2')
    assert r.returncode == 0, r.stderr[-2000:]
    got = pd.read_csv(tmp_path/'p.csv')
    pt = load_model(d, device='cpu')
    want = pt.predict(list(got.path))
    assert list(got.label) == want.labels
    np.testing.assert_allclose(got[[f'prob_{c}' for c in pt.classes]].to_numpy(), want.probs, atol=1e-4)
    # what the light install cannot do is one line and exit 2, not a traceback
    r = run(d, root, '--out', tmp_path/'q.csv')
    assert r.returncode == 2 and 'needs the full install' in r.stderr and 'Traceback' not in r.stderr, r.stderr[-2000:]
    assert len(r.stderr.strip().splitlines()) == 1
