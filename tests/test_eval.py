"Tests of the calibrated model folder (temperature, threshold, model card) and `artnb-eval` on tiny artnb.synth data (SYNTHETIC)."
import json, os, shutil, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch, yaml

from artnb.learner import art_learner
from artnb.inference import save_model, load_model, calibrate, check_config, card_metrics, Predictor, NONE_LABEL
from artnb.calibration import fit_temperature
from artnb.card import model_card
from artnb.predict import predict_files
from artnb.evaluate import evaluate_model, eval_main
from artnb.analysis import predictions, metrics_table, load_metrics
from artnb.core import UsageError
from artnb.data import scan, split_items, art_dls
from artnb.validate import validate

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, 'PYTHONPATH': str(ROOT), 'HF_HUB_OFFLINE': '1', 'PYTHONIOENCODING': 'utf-8'}
P3 = ['Synth Mondrian', 'Synth Rothko', 'Synth Hokusai']


def start_cli(*args):
    "A running `artnb-eval args` (several run at once: each spends most of its time importing torch)"
    exe = BIN/'artnb-eval'
    assert exe.exists(), f"{exe} missing: pip install -e . in the venv"
    return subprocess.Popen([str(exe)] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def finish(p, timeout=600):
    "(exit status, stdout, stderr) of a process `start_cli` started"
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


@pytest.fixture(scope='module')
def data(synth):
    "(dataset root, items with the split): the suite's shared tiny dataset (tests/conftest.py); its items.csv is `synth.csv`"
    return synth.root, synth.items


@pytest.fixture(scope='module')
def items_csv(synth): return synth.csv


@pytest.fixture(scope='module')
def trained(multi_model):
    "(learner, model folder): the shared simple_cnn trained on the 3 painters (tests/conftest.py)"
    return multi_model


@pytest.fixture(scope='module')
def binary(binary_model):
    "(learner, calibration, model folder): the shared calibrated Synth Rothko-vs-other simple_cnn (tests/conftest.py)"
    return binary_model


# ---- calibration
def test_fit_temperature_on_overconfident_logits():
    rng = np.random.default_rng(1)
    true = rng.normal(0, 1.2, (1500, 5))
    y = np.array([rng.choice(5, p=np.exp(r) / np.exp(r).sum()) for r in true])
    over = 3 * true
    T = fit_temperature(over, y)
    nll = lambda z, t: float(torch.nn.functional.cross_entropy(torch.tensor(z) / t, torch.tensor(y)))
    assert T > 1 and abs(T - 3) < 0.7
    assert nll(over, T) < nll(over, 1.0)


def test_calibrate_stores_and_predictor_applies(trained, data, tmp_path):
    learn, _ = trained
    _, items = data
    pred = load_model(trained[1])
    valid = items[items.split == 'valid']
    r = calibrate(pred, valid, accept=0.8)
    assert r['threshold_kind'] == 'reject' and 0 <= r['threshold'] <= 1 and r['nll_after'] <= r['nll_before'] + 1e-9
    assert pred.config.temperature == r['temperature'] and pred.threshold == r['threshold']
    res = pred.predict(valid)
    z = pred.predict_logits(valid)
    np.testing.assert_allclose(res.probs, torch.softmax(torch.tensor(z) / r['temperature'], -1).numpy(), atol=1e-6)
    assert res.labels == [NONE_LABEL if p.max() < r['threshold'] else pred.classes[p.argmax()] for p in res.probs]
    assert NONE_LABEL not in pred.predict(valid, threshold=0.).labels


def test_binary_threshold_roundtrip(binary, data):
    learn, cal, d = binary
    _, items = data
    c = json.loads((d/'config.json').read_text())
    assert (c['threshold'], c['threshold_kind'], c['temperature']) == (cal['threshold'], 'binary', cal['temperature'])
    p = load_model(d)
    valid = items[items.split == 'valid']
    res = p.predict(valid)
    pos = p.classes[p.pos_index]
    assert pos == 'Synth Rothko'
    assert res.labels == [pos if s >= cal['threshold'] else 'other' for s in res.probs[:, p.pos_index]]
    assert set(load_model(d, threshold=0.).predict(valid).labels) == {pos}     # explicit threshold overrides


@pytest.mark.parametrize('changes,msg', [
    (dict(temperature=-1), 'temperature must be a finite number > 0'),
    (dict(temperature=True), 'temperature must be'),
    (dict(threshold=-0.1, threshold_kind='binary'), 'threshold must be null or a number in [0, 1]'),
    (dict(threshold='0.5', threshold_kind='binary'), 'threshold must be null or a number'),
    (dict(threshold=0.5, threshold_kind=None), 'no threshold_kind'),
    (dict(threshold_kind='sometimes'), "threshold_kind must be null, 'binary' or 'reject'"),
    (dict(metrics={'values': {'accuracy': {'estimate': 0.5, 'median': 0.4}}}), 'metrics.values.accuracy'),
    (dict(metrics={'n': -3}), 'metrics.n must be'),
    (dict(metrics={'evil': 1}), 'metrics has unknown keys'),
])
def test_check_config_new_keys(binary, changes, msg):
    c = json.loads((binary[2]/'config.json').read_text())
    c.update(changes)
    with pytest.raises(ValueError, match=msg.replace('[', r'\[').replace(']', r'\]')): check_config(c)


def test_old_config_without_new_keys_loads(trained, tmp_path):
    m = tmp_path/'old'; shutil.copytree(trained[1], m)
    c = json.loads((m/'config.json').read_text())
    for k in ('temperature', 'threshold', 'threshold_kind', 'metrics'): c.pop(k)
    (m/'config.json').write_text(json.dumps(c)); (m/'README.md').unlink()
    p = load_model(m)
    assert (p.temperature, p.threshold, p.config.metrics) == (1.0, None, {})


# ---- model card
def _front(text): return yaml.safe_load(text.split('---\n')[1])


def test_model_card_front_matter_and_sections(trained, binary):
    learn, d = trained
    card = (d/'README.md').read_text()
    assert card.startswith('---\n')
    front = _front(card)
    assert front['library_name'] == 'artnb' and front['pipeline_tag'] == 'image-classification'
    assert front['classes'] == sorted(P3) and front['data_kind'] == 'synthetic' and 'synthetic-data' in front['tags']
    assert front['temperature'] == 1.0 and front.get('threshold') is None and 'metrics' not in front and 'model-index' not in front
    assert front['license'] == 'apache-2.0' and 'base_model' not in front          # simple_cnn from scratch
    assert front['decision_rule'].startswith('the most probable class')
    for s in ('SYNTHETIC DATA', '## What it classifies', '## Training data', '## Base model and license', '## Evaluation',
              '## Intended use and limits', '## How to use', 'load_model', 'artnb-predict', 'artnb-eval'):
        assert s in card, s
    bc = _front((binary[2]/'README.md').read_text())
    assert bc['threshold'] == binary[1]['threshold'] and bc['threshold_kind'] == 'binary' and bc['positive_class'] == 'Synth Rothko'


def test_model_card_metrics_with_n_and_ci(trained, tmp_path):
    "The model-index holds Hub metric ids with n and interval; ModelCard.load reads them back"
    from huggingface_hub import ModelCard
    learn, _ = trained
    tab = metrics_table(predictions(learn), n=100)
    m = card_metrics(tab, split='valid')
    d = save_model(learn, tmp_path/'m', metrics=m)
    card = (d/'README.md').read_text()
    front = _front(card)
    assert front['metrics'] == ['accuracy', 'balanced_accuracy', 'precision', 'recall', 'f1', 'top_k_accuracy']
    res = ModelCard.load(d/'README.md').data.eval_results
    acc = next(r for r in res if r.metric_type == 'accuracy')
    assert (acc.task_type, acc.dataset_split, acc.metric_args['n'], acc.metric_args['ci_level']) == ('image-classification', 'valid', len(learn.dls.valid_ds), 0.95)
    assert acc.metric_value == pytest.approx(tab.loc['accuracy', 'estimate'])
    assert [acc.metric_args['ci_low'], acc.metric_args['ci_high']] == [pytest.approx(tab.loc['accuracy', 'lo']), pytest.approx(tab.loc['accuracy', 'hi'])]
    assert f"n = {len(learn.dls.valid_ds)}" in acc.metric_name
    f1 = next(r for r in res if r.metric_type == 'f1' and r.metric_config == 'macro')
    assert f1.metric_value == pytest.approx(tab.loc['macro_f1', 'estimate']) and f1.metric_args['average'] == 'macro'
    assert 'Small sample' in card                       # n < 30
    big = dict(m, n=500)
    assert 'Small sample' not in model_card(dict(json.loads((d/'config.json').read_text()), metrics=big))
    hostile = dict(json.loads((d/'config.json').read_text()), classes=['<script>x</script>', 'a|b', 'c'])
    text = model_card(hostile)
    assert '<script>' not in text.split('---\n', 2)[2] and _front(text)['classes'][0] == '<script>x</script>'


def test_model_card_hub_fields_and_cv(trained, tmp_path):
    "A pretrained Lite0 config with a test evaluation and a k-fold estimate: ModelCard.load gives license, base model, the test accuracy with n, and the CV mean with its folds"
    from huggingface_hub import ModelCard
    learn, d = trained
    tab = metrics_table(predictions(learn), n=50)
    summary = dict(recipe='artnb', n=40, cv_folds=3, metrics={'accuracy': dict(mean=0.6, sd=0.05, folds=[0.55, 0.6, 0.65]),
                                                              'macro_f1': dict(mean=0.5, sd=float('nan'), folds=[0.5] * 3)})
    m = card_metrics(tab, 'test', cv=summary)                 # what artnb-train passes: results['cv'] = CVRun.summary()
    assert m['cv'] == dict(folds=3, n=40, values={'accuracy': dict(mean=0.6, sd=0.05), 'macro_f1': dict(mean=0.5, sd=None)})
    cfg = dict(json.loads((d/'config.json').read_text()), arch='tf_efficientnet_lite0', pretrained=True, metrics=m)
    check_config(cfg)
    p = tmp_path/'README.md'; p.write_text(model_card(cfg))
    data = ModelCard.load(p).data
    assert (data.license, data.base_model, data.library_name) == ('apache-2.0', 'timm/tf_efficientnet_lite0.in1k', 'artnb')
    acc = next(r for r in data.eval_results if r.metric_type == 'accuracy' and r.dataset_split == 'test')
    assert acc.metric_args['n'] == len(learn.dls.valid_ds) and acc.metric_value == pytest.approx(tab.loc['accuracy', 'estimate'])
    cv = next(r for r in data.eval_results if r.metric_type == 'accuracy' and r.dataset_split == '3-fold-cv')
    assert (cv.metric_value, cv.metric_args) == (0.6, dict(folds=3, n=40, sd=0.05))
    text = p.read_text()
    assert '3-fold cross-validation' in text and '| accuracy | 0.600 | 0.050 |' in text and '| macro\\_f1 | 0.500 | - |' in text
    other = _front(model_card(dict(cfg, arch='resnet50')))       # another pretrained body: its own terms
    assert other['license'] == 'other' and 'base_model' not in other


@pytest.mark.parametrize('cv,msg', [
    (dict(folds=1, n=3, values={}), 'metrics.cv must be'),
    (dict(folds=3, n=-1, values={}), 'metrics.cv must be'),
    (dict(folds=3, n=9, values={}, extra=1), 'metrics.cv must be'),
    (dict(folds=3, n=9, values={'accuracy': dict(mean='0.5')}), 'metrics.cv.values.accuracy'),
    (dict(folds=3, n=9, values={'accuracy': dict(mean=0.5, median=0.4)}), 'metrics.cv.values.accuracy'),
])
def test_check_config_rejects_bad_cv(trained, cv, msg):
    c = json.loads((trained[1]/'config.json').read_text())
    c['metrics'] = dict(c['metrics'], cv=cv)
    with pytest.raises(ValueError, match=msg): check_config(c)


# ---- artnb-predict CSV
def test_predict_csv_has_class_columns_and_threshold(binary, data, tmp_path):
    _, cal, d = binary
    root, items = data
    files = list(items[items.split == 'valid'].path)[:4]
    df = predict_files(d, files, out=tmp_path/'p.csv', progress=False)
    csv = pd.read_csv(tmp_path/'p.csv', keep_default_na=False)
    assert list(csv.columns) == ['path', 'label', 'prob', 'prob_Synth Rothko', 'prob_other', 'error']
    pos = csv['prob_Synth Rothko'].astype(float)
    assert csv.label.tolist() == ['Synth Rothko' if p >= cal['threshold'] else 'other' for p in pos]
    df1 = predict_files(d, files, out=None, threshold=1.0, progress=False)
    assert set(df1.label) <= {'other', 'Synth Rothko'} and (df1.label == 'other').sum() >= (pos < 1.0).sum()


# ---- artnb-eval
def test_evaluate_reproduces_predictions_accuracy(trained, items_csv, tmp_path):
    learn, d = trained
    r = evaluate_model(d, items_csv, out=tmp_path/'e', split='valid', n_boot=100)
    ref = predictions(learn)
    assert r['n'] == len(ref) and r['accuracy'] == float(ref['correct'].mean())
    m = load_metrics(tmp_path/'e')
    assert m['schema'] == 'artnb.metrics/1' and m['data']['kind'] == 'synthetic'
    assert m['results']['metrics']['accuracy']['estimate'] == r['accuracy']
    assert {'confusion.png', 'reliability.png', 'metrics.json', 'predictions.csv'} <= {p.name for p in (tmp_path/'e').iterdir()}


def test_evaluate_per_source_and_skipped(trained, data, tmp_path):
    _, d = trained
    root, items = data
    it = items[items.split == 'valid'].copy()
    it['source'] = ['museum_a' if i % 2 else 'museum_b' for i in range(len(it))]
    it.loc[it.index[0], 'label'] = 'Synth Unseen'
    r = evaluate_model(d, it, out=tmp_path/'e', split='valid', n_boot=50)
    assert r['skipped'] == {'Synth Unseen': 1} and r['n'] == len(it) - 1
    ps = r['per_source']
    assert sorted(ps.index) == ['museum_a', 'museum_b'] and ps['n'].sum() == r['n']
    assert (tmp_path/'e'/'per_source.csv').exists() and (tmp_path/'e'/'per_source.png').exists()


def test_eval_cli_exit_codes(trained, data, items_csv, tmp_path):
    "Three real command runs (exit 0, 1 and 2: each starts torch, ~8 s), started together; every other wrong argument in-process, where the same UsageError gives the exit status"
    _, d = trained
    root, items = data
    bad = tmp_path/'bad'
    for c in P3:
        (bad/c).mkdir(parents=True)
        for f in list(items[items.label == c].path)[:2]: shutil.copy(f, bad/c/Path(f).name)
    (bad/P3[1]/'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n truncated')
    runs = {'ok': start_cli(d, items_csv, '--out', tmp_path/'ok', '--split', 'valid', '--bs', '4'),
            'usage': start_cli(d, items_csv, '--split', 'dev'),
            'bad': start_cli(d, bad, '--out', tmp_path/'e1')}
    res = {k: finish(p) for k, p in runs.items()}
    rc, _, err = res['ok']
    assert rc == 0, err
    assert (tmp_path/'ok'/'metrics.json').exists() and 'images evaluated' in err
    rc, _, err = res['usage']
    assert rc == 2 and len(err.strip().splitlines()) == 1 and err.startswith('artnb-eval: --split must be one of'), err
    cases = [((d, items_csv), dict(bs=0), '--bs must be'), ((d, items_csv), dict(split='test'), "no 'test' rows"),
             ((d, items_csv), dict(out=tmp_path/'no'/'x'), 'does not exist'), ((tmp_path, items_csv), {}, 'has no config.json'),
             ((d, tmp_path/'missing'), {}, 'does not exist')]
    for args, kw, msg in cases:
        with pytest.raises(UsageError) as e: eval_main(*args, **{'out': tmp_path/'e0', **kw})
        assert e.value.code == 2 and msg in str(e.value) and str(e.value).startswith('artnb-eval: '), (kw, str(e.value))
        assert '\n' not in str(e.value)
    rc, _, err = res['bad']
    assert rc == 1 and 'broken.png' in err, err
    m = load_metrics(tmp_path/'e1')
    assert [Path(u['file']).name for u in m['results']['unreadable']] == ['broken.png'] and m['results']['n'] == 6


def test_eval_binary_threshold_and_robustness(binary, items_csv, tmp_path):
    _, cal, d = binary
    r = evaluate_model(d, items_csv, out=tmp_path/'e', split='valid', robustness=True, n_boot=50)
    pp = r['predictions']
    t = cal['threshold']   # a validation score: the image that set it may sit on it (float32 vs float64)
    assert all(l == ('Synth Rothko' if p >= t else 'other') or abs(p - t) < 1e-6 for l, p in zip(pp['pred'], pp['prob_Synth Rothko']))
    rob = r['robustness']
    assert set(rob.kind) == {'none', 'jpeg', 'blur', 'downscale'} and (rob.n == r['n']).all()
    assert rob.loc[rob.kind == 'none', 'accuracy'].item() == r['accuracy']
    m = load_metrics(tmp_path/'e')
    assert len(m['results']['robustness']) == len(rob) and m['results']['threshold_kind'] == 'binary'


def test_hub_id_and_revision_in_every_entry_point(trained, data, tmp_path, monkeypatch):
    "A model found in the local Hugging Face cache by its id at a branch or commit: load_model, artnb-predict and artnb-eval take `owner/name` + revision, offline"
    import shutil
    from artnb.evaluate import evaluate_model
    from artnb.hub import hub_model_folder
    from artnb.core import UsageError
    src = Path(trained[1])   # the saved model folder
    hub = tmp_path/'hub'; repo = hub/'models--artnb-test--toy'
    commit = 'a' * 40
    (repo/'blobs').mkdir(parents=True); (repo/'refs').mkdir(); snap = repo/'snapshots'/commit; snap.mkdir(parents=True)
    (repo/'refs'/'v1').write_text(commit)   # a tag only: no 'main'
    for f in src.iterdir():
        if f.is_file(): shutil.copy(f, repo/'blobs'/f.name); (snap/f.name).symlink_to(Path('../../blobs')/f.name)
    monkeypatch.setenv('HF_HUB_CACHE', str(hub))
    assert hub_model_folder('artnb-test/toy', 'v1') == snap and hub_model_folder('artnb-test/toy', commit) == snap
    assert hub_model_folder('artnb-test/toy', 'main') is None
    root, items = data
    files = list(items['path'][:3])
    df = predict_files('artnb-test/toy', files, out=None, progress=False, revision='v1')
    assert len(df) == 3 and (df['error'].fillna('') == '').all()
    with pytest.raises(UsageError, match='does not exist'): predict_files('artnb-test/toy', files, out=None, progress=False, revision='main')
    assert evaluate_model('artnb-test/toy', items, split='all', n_boot=10, revision=commit)['n'] == len(items)
    from artnb.export import export_main   # artnb-export-onnx writes model.onnx into the snapshot; artnb-predict --backend onnx finds it there
    assert export_main('artnb-test/toy', revision='v1') == 0 and (snap/'model.onnx').is_file()
    onnx = predict_files('artnb-test/toy', files, out=None, progress=False, revision='v1', backend='onnx')
    assert list(onnx.label) == list(df.label)
    with pytest.raises(UsageError, match='does not exist'): export_main('artnb-test/toy', revision='main')
    from artnb.demo_app import resolve_models   # artnb-demo --model-dir owner/name --revision v1
    assert resolve_models('artnb-test/toy', revision='v1')[0] == [snap]
    with pytest.raises(FileNotFoundError): resolve_models('artnb-test/toy', revision='main')
