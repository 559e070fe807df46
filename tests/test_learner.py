"Fast tests of artnb.learner on tiny artnb.synth data (SYNTHETIC): heads x a small body, offline failure, safe loading, fusion, artnb-predict."
import json, os, shutil, subprocess, sys, time
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch

from artnb.learner import HEADS, art_learner, SingleLogitBCE, schedule_table
from artnb.backbones import create_body_and_stats, hub_reachable, OfflineWeightsError
from artnb.inference import save_model, load_model, Predictor, NONE_LABEL
from artnb.fusion import FusedBinary
from artnb.data import scan, split_items, art_dls
from artnb.validate import validate

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


P3 = ['Synth Mondrian', 'Synth Rothko', 'Synth Hokusai']


@pytest.fixture(scope='module')
def items(synth):
    "The suite's shared tiny dataset (tests/conftest.py): 3 painters x 8 validated images, split 60/40"
    return synth.items


@pytest.fixture(scope='module')
def dls(items): return art_dls(items, size=32, bs=8)


@pytest.fixture(scope='module')
def dls2(items): return art_dls(items, task='binary', target='Synth Mondrian', size=32, bs=8)


@pytest.fixture(scope='module')
def saved(dls, tmp_path_factory):
    learn = art_learner(dls, 'resnet18', head='gap', pretrained=False)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
    return learn, save_model(learn, tmp_path_factory.mktemp('model')/'m')


@pytest.mark.parametrize('head', list(HEADS))
def test_head_forward_and_one_batch(head, dls, dls2):
    d = dls2 if head == 's0' else dls
    learn = art_learner(d, 'resnet18', head=head, pretrained=False)
    xb, yb = d.one_batch()
    learn.model.train()
    out = learn.model(xb)
    assert out.shape == (len(xb), d.c)
    learn.create_opt()
    before = [p.detach().clone() for p in learn.model[1].parameters()]
    loss = learn.loss_func(out, yb)
    loss.backward(); learn.opt.step(); learn.opt.zero_grad()
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, learn.model[1].parameters()))
    if head == 's0':
        assert isinstance(learn.loss_func, SingleLogitBCE)
        assert learn.model[1][-2].out_features == 1           # one logit
        p, _ = learn.get_preds(dl=d.valid)
        assert p.shape[1] == 2 and torch.allclose(p.sum(1), torch.ones(len(p)))


def test_offline_failure_is_fast_and_clear(monkeypatch):
    if hub_reachable() or hub_reachable('download.pytorch.org'): pytest.skip('network available')
    cached = Path(torch.hub.get_dir())/'checkpoints'
    if cached.exists() and any(cached.glob('resnet50-*')): pytest.skip('resnet50 weights cached')
    for arch in ('resnet50', 'tf_efficientnetv2_s'):
        t0 = time.time()
        with pytest.raises(OfflineWeightsError, match='tf_efficientnet_lite0'):
            create_body_and_stats(arch, pretrained=True)
        assert time.time() - t0 < 2
    body, stats = create_body_and_stats('tf_efficientnet_lite0', pretrained=True)   # the offline alternative works
    assert stats == ([0.5]*3, [0.5]*3)


def _tamper(src, dst, **changes):
    shutil.copytree(src, dst)
    c = json.loads((dst/'config.json').read_text())
    for k, v in changes.items():
        if v is None: c.pop(k)
        else: c[k] = v
    (dst/'config.json').write_text(json.dumps(c))
    return dst


@pytest.mark.parametrize('changes,msg', [
    (dict(format_version=2), 'Unknown format_version'),
    (dict(arch='resnet_unknown'), 'unknown architecture'),
    (dict(head='transformer'), 'unknown head'),
    (dict(classes=['a', 'b'], n_out=2), 'Class count mismatch'),
    (dict(size=None), 'lacks required keys'),
    (dict(head_kw={'evil': 1}), 'does not take'),
    (dict(format='pickle'), 'not an artnb-model'),
])
def test_safe_loader_refuses_tampered_config(saved, tmp_path, changes, msg):
    _, d = saved
    with pytest.raises(ValueError, match=msg):
        load_model(_tamper(d, tmp_path/'t', **changes))


def test_roundtrip_in_fresh_process(saved, items, tmp_path):
    learn, d = saved
    paths = list(items[items.split == 'valid'].path)
    (tmp_path/'paths.json').write_text(json.dumps(paths))
    code = ("import json,sys,numpy as np; from artnb.inference import load_model; "
            f"p=load_model({str(d)!r}); r=p.predict(json.load(open({str(tmp_path/'paths.json')!r})), bs=4); "
            f"np.save({str(tmp_path/'probs.npy')!r}, r.probs); json.dump(r.labels, open({str(tmp_path/'labels.json')!r},'w'))")
    subprocess.run([sys.executable, '-c', code], check=True, cwd=tmp_path)
    probs, labels = np.load(tmp_path/'probs.npy'), json.loads((tmp_path/'labels.json').read_text())
    here = Predictor.from_learner(learn).predict(paths)
    np.testing.assert_allclose(probs, here.probs, rtol=0, atol=1e-6)
    assert labels == here.labels
    p, _ = learn.get_preds()                  # and the same as fastai's own validation predictions
    np.testing.assert_allclose(probs, p.numpy(), atol=1e-5)


def test_fusion_none_of_these(items):
    members = []
    for c in ('Synth Mondrian', 'Synth Rothko'):
        d = art_dls(items[items.label != 'Synth Hokusai'], task='binary', target=c, size=32, bs=8)
        l = art_learner(d, 'simple_cnn', head='s0', pretrained=False)
        with l.no_bar(), l.no_logging(): l.fit(2, 3e-3)
        members.append(l)
    fused = FusedBinary(members)
    assert fused.classes == ['Synth Mondrian', 'Synth Rothko']
    valid = items[items.split == 'valid']
    fused.calibrate(valid[valid.label != 'Synth Hokusai'], accept=0.9)
    r = fused.predict(valid)
    s = fused.scores(valid)
    assert r.probs.shape == (len(valid), 2)
    assert [l == NONE_LABEL for l in r.labels] == list(s.max(1) < fused.threshold)
    fused.threshold = 1.01
    assert set(fused.predict(valid).labels) == {NONE_LABEL}
    fused.threshold = 0.0
    assert NONE_LABEL not in fused.predict(valid).labels


def test_predict_cli_good_and_bad_files(saved, items, tmp_path):
    _, d = saved
    mix = tmp_path/'mix'; (mix/'sub').mkdir(parents=True)
    for p in list(items.path)[:3]: shutil.copy(p, mix/'sub'/Path(p).name)
    (mix/'text.jpg').write_text('this is not a jpeg')
    (mix/'zero.png').write_bytes(b'')
    out = tmp_path/'preds.csv'
    exe = BIN/'artnb-predict'
    cmd = [str(exe)] if exe.exists() else [sys.executable, '-c', 'from artnb.cli import predict_cli; predict_cli()']
    r = subprocess.run(cmd + [str(d), str(mix), '--out', str(out), '--topk', '2', '--cam', str(tmp_path/'cam')],
                       capture_output=True, text=True)
    assert r.returncode == 1, r.stderr                  # some inputs unreadable (listed): 1
    df = pd.read_csv(out, keep_default_na=False)
    assert len(df) == 5
    bad = df[df.error != '']
    assert sorted(Path(p).name for p in bad.path) == ['text.jpg', 'zero.png']
    assert 'text.jpg' in r.stderr and 'zero.png' in r.stderr
    good = df[df.error == '']
    assert set(good.label) <= set(P3) and (good.prob.astype(float) > 0).all()
    assert len(list((tmp_path/'cam').glob('*.png'))) == 3
