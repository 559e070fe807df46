"artnb-train from the command line: a model folder that artnb-predict, artnb-eval and load_model use; wrong arguments exit 2"
import json, subprocess, sys
from pathlib import Path
import pandas as pd, pytest
from artnb.inference import load_model

BIN = Path(sys.executable).parent


def start(*args):
    "The console script args[0] started with the other args"
    return subprocess.Popen([str(BIN/args[0])] + [str(a) for a in args[1:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p, timeout=600):
    "(exit status, stdout, stderr) of a process `start` started"
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


def run(*args): return finish(start(*args))


@pytest.fixture(scope='module')
def data(synth):
    "The suite's shared tiny dataset folder (tests/conftest.py): 3 painters x 8 images"
    return synth.root


def test_train_then_predict_and_eval(data, tmp_path):
    rc, out, err = run('artnb-train', data, tmp_path/'model', '--arch', 'simple_cnn', '--no-pretrained', '--img-size', 32,
                       '--epochs', 2, '--bs', 8, '--cv-folds', 2)
    assert rc == 0, err[-2000:]
    assert 'test accuracy' in out and '2-fold CV accuracy' in out
    m = tmp_path/'model'
    assert {'README.md', 'config.json', 'model.safetensors', 'metrics.json', 'predictions.csv', 'items.csv'} <= {p.name for p in m.iterdir()}
    pred = load_model(m)
    assert pred.config.classes == ['Synth Hokusai', 'Synth Mondrian', 'Synth Rothko'] and pred.config.data_kind == 'synthetic'
    mj = json.loads((m/'metrics.json').read_text())
    # artnb-eval and artnb-predict read the model only: both commands start together (each spends most of its time importing torch)
    ev = start('artnb-eval', m, m/'items.csv', '--out', tmp_path/'eval', '--split', 'test')
    pr = start('artnb-predict', m, data, '--out', tmp_path/'p.csv')
    # artnb-eval on the same test split reproduces the accuracy artnb-train reported
    rc, _, err = finish(ev)
    assert rc == 0, err[-2000:]
    ej = json.loads((tmp_path/'eval'/'metrics.json').read_text())
    assert ej['results']['n'] == mj['results']['n_test']
    assert ej['results']['accuracy'] == pytest.approx(mj['results']['metrics']['accuracy'], abs=1e-9)
    from huggingface_hub import ModelCard   # the card carries the k-fold CV estimate beside the test numbers
    assert any(r.dataset_split == '2-fold-cv' for r in ModelCard.load(m/'README.md').data.eval_results)
    # artnb-eval on the folder it was trained on leaves out the train + valid images (seen.csv), unless told otherwise
    from artnb.evaluate import evaluate_model
    items = pd.read_csv(m/'items.csv')
    seen = int(items['split'].isin(['train', 'valid']).sum())
    r = evaluate_model(m, data, split='all', n_boot=20)
    assert (r['n_seen_left_out'], r['n']) == (seen, 24 - seen)
    assert evaluate_model(m, data, split='all', n_boot=20, include_seen=True)['n'] == 24
    rc, _, err = finish(pr)
    assert rc == 0, err[-2000:]
    assert len(pd.read_csv(tmp_path/'p.csv')) == 24


def test_train_bad_arguments_exit_2(data, tmp_path):
    "One real command run (the exit status and the one-line message); the other wrong arguments in-process, where the same UsageError gives the exit status"
    from artnb.training import train_model
    from artnb.core import UsageError
    rc, _, err = run('artnb-train', data, tmp_path/'m', '--arch', 'resnet9000')
    assert rc == 2 and 'unknown --arch' in err and len(err.strip().splitlines()) == 1, err
    for kw, words in [(dict(task='binary'), 'needs --target'), (dict(ratios=(0.5, 0.5)), 'three fractions'),
                      (dict(recipe='nope'), "--recipe must be 'artnb'")]:
        with pytest.raises(UsageError, match=words) as e: train_model(data, tmp_path/'m', **kw)
        assert e.value.code == 2
    assert not (tmp_path/'m').exists()


def test_binary_card_eval_and_predict_agree(data, tmp_path):
    "A binary model's card, artnb-eval and artnb-predict give the same label and probability for every test image; on a small validation set the stored rule keeps T = 1 and a threshold strictly inside (0, 1)"
    import numpy as np
    from artnb.training import train_model
    from artnb.evaluate import evaluate_model
    from artnb.predict import predict_files
    res = train_model(data, tmp_path/'b', arch='simple_cnn', pretrained=False, img_size=32, epochs=2, bs=8, task='binary',
                      target='Synth Rothko', n_boot=50, verbose=False)
    m = tmp_path/'b'
    pred = load_model(m)
    assert pred.threshold_kind == 'binary' and 0 < pred.threshold < 1
    cal = res['calibration']
    assert cal['temperature'] == 1.0 and any('fewer than 10' in n for n in cal['notes']), cal   # too few to fit a temperature
    from huggingface_hub import ModelCard
    acc = next(r for r in ModelCard.load(m/'README.md').data.eval_results if r.metric_type == 'accuracy' and r.dataset_split == 'test')
    ev = evaluate_model(m, m/'items.csv', split='test', n_boot=50)
    assert acc.metric_args['n'] == ev['n'] == res['n_test']
    assert acc.metric_value == pytest.approx(ev['accuracy'], abs=1e-9)
    p = ev['predictions']
    argmax = np.array(pred.classes, dtype=object)[p[[f'prob_{c}' for c in pred.classes]].to_numpy().argmax(1)]
    if cal['threshold'] == 0.5: assert ev['accuracy'] == pytest.approx((argmax == p['target'].to_numpy()).mean())
    df = predict_files(m, list(p['path']), out=None, progress=False)
    assert list(df['label']) == list(p['decision'])
    for c in pred.classes: np.testing.assert_allclose(df[f'prob_{c}'].to_numpy(), p[f'prob_{c}'].to_numpy(), atol=1e-6)
