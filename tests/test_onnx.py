"ONNX export: every backbone family and head artnb saves gives PyTorch's probabilities within 1e-4 under onnxruntime, from Python and from the command line."
import subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest
from artnb.data import scan, split_items, art_dls
from artnb.learner import art_learner
from artnb.inference import save_model, load_model
from artnb.predict import predict_files, predict_main
from artnb.core import UsageError
from artnb.export import export_onnx

pytest.importorskip('onnxruntime')
BIN = Path(sys.executable).parent
P3 = ['Synth Mondrian', 'Synth Rothko', 'Synth Hokusai']


@pytest.fixture(scope='module')
def items(synth):
    "The suite's shared tiny dataset (tests/conftest.py)"
    return synth.items


def saved(items, tmp, arch, head, size, classes=P3, **kw):
    it = items[items.label.isin(classes)]
    learn = art_learner(art_dls(it, size=size, bs=4, **kw), arch, head=head, pretrained=arch == 'tf_efficientnet_lite0')
    learn.art.temperature = 1.7   # a calibrated model: the temperature must reach both backends
    return save_model(learn, tmp/f'{arch}_{head}')


@pytest.mark.parametrize('arch,head,size,classes', [
    ('tf_efficientnet_lite0', 'gap', 64, P3),        # the offline pretrained backbone, artnb's recipe head
    ('resnet18', 'spp', 64, P3),                    # SPP: adaptive max-pooling bins that do not divide the map
    ('resnet18', 's0', 48, P3[:2]),                  # S0's single-logit binary head
    ('convnext_tiny', 'fastai', 32, P3)])           # fastai's concat-pool head on a ConvNeXt
def test_parity_with_pytorch(items, tmp_path, arch, head, size, classes):
    d = saved(items, tmp_path, arch, head, size, classes)
    paths = list(items[items.label.isin(classes)].path)
    meta = export_onnx(d, images=paths[:4])
    pt, po = load_model(d), load_model(d, backend='onnx')
    a, b = pt.predict(paths), po.predict(paths)
    diff = float(np.abs(a.probs - b.probs).max())
    assert diff < 1e-4 and meta['max_abs_diff_probs'] < 1e-4, (diff, meta)
    assert a.labels == b.labels
    assert po.temperature == pt.temperature == 1.7


def test_cli_export_and_predict(items, tmp_path):
    "The two commands for real (each starts torch, ~8 s); the wrong arguments in-process, where the same UsageError gives exit 2"
    d = saved(items, tmp_path, 'simple_cnn', 'gap', 32)
    r = subprocess.run([str(BIN/'artnb-export-onnx'), str(d)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and 'max |p_onnx - p_torch|' in r.stdout, r.stderr[-2000:]
    folder = Path(items.path[0]).parent.parent
    r = subprocess.run([str(BIN/'artnb-predict'), str(d), str(folder), '--out', str(tmp_path/'onnx.csv'), '--backend', 'onnx'],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    a = predict_files(d, [folder], out=tmp_path/'torch.csv', progress=False)
    b = pd.read_csv(tmp_path/'onnx.csv')
    assert list(a.path) == list(b.path) and list(a.label) == list(b.label)
    cols = [c for c in a if c.startswith('prob')]
    assert np.abs(a[cols].to_numpy(float) - b[cols].to_numpy(float)).max() < 1e-4
    # CAM needs gradients; an unknown backend and a folder without model.onnx are argument errors (exit 2)
    (d/'model.onnx').unlink()
    for kw, words in [(dict(backend='onnx', cam=tmp_path/'cam'), 'torch backend'), (dict(backend='tensorrt'), '--backend'),
                      (dict(backend='onnx'), 'artnb-export-onnx')]:
        with pytest.raises(UsageError, match=words) as e: predict_main(d, [folder], out=tmp_path/'x.csv', **kw)
        assert e.value.code == 2
    assert not (tmp_path/'x.csv').exists()
