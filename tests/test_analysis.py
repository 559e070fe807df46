"Fast tests of artnb.analysis (metrics vs sklearn, ECE, bootstrap, metrics.json) and artnb.widgets (headless upload viewer)."
import datetime, io, json, struct, zlib

import numpy as np, pandas as pd, pytest
from PIL import Image
from sklearn import metrics as skm

from artnb.analysis import (classification_metrics, bootstrap_ci, metrics_table, confusion, extended_confusion,
                            wilson_ci, HEADLINE_METRICS, ece, reliability, binary_threshold, apply_threshold, save_metrics, load_metrics,
                            validate_metrics, METRICS_SCHEMA)


def fake_preds(n=300, classes=('a', 'b', 'c'), strength=2.0, seed=0, sources=None):
    rng = np.random.default_rng(seed); C = len(classes)
    y = rng.integers(0, C, n)
    z = rng.normal(size=(n, C)); z[np.arange(n), y] += strength
    P = np.exp(z); P /= P.sum(1, keepdims=True)
    df = pd.DataFrame({'target': [classes[i] for i in y], 'pred': [classes[i] for i in P.argmax(1)], 'p_max': P.max(1)})
    for j, c in enumerate(classes): df[f'prob_{c}'] = P[:, j]
    if sources: df['source'] = [sources[i % len(sources)] for i in range(n)]
    return df


@pytest.mark.parametrize('classes', [('a', 'b', 'c', 'd'), ('AI', 'human')])
def test_metrics_match_sklearn(classes):
    df = fake_preds(classes=classes, seed=len(classes))
    m = classification_metrics(df)
    assert m['accuracy'] == pytest.approx(skm.accuracy_score(df.target, df.pred))
    assert m['balanced_accuracy'] == pytest.approx(skm.balanced_accuracy_score(df.target, df.pred))
    for avg in ('macro', 'weighted'):
        assert m[f'{avg}_f1'] == pytest.approx(skm.f1_score(df.target, df.pred, average=avg, zero_division=0))
        assert m[f'{avg}_precision'] == pytest.approx(skm.precision_score(df.target, df.pred, average=avg, zero_division=0))
        assert m[f'{avg}_recall'] == pytest.approx(skm.recall_score(df.target, df.pred, average=avg, zero_division=0))
    P = df[[f'prob_{c}' for c in classes]].values
    if len(classes) > 2:
        assert m['top2_accuracy'] == pytest.approx(skm.top_k_accuracy_score(df.target, P, k=2, labels=list(classes)))
    else: assert m['top2_accuracy'] == 1.0
    np.testing.assert_array_equal(confusion(df).values, skm.confusion_matrix(df.target, df.pred, labels=list(classes)))
    if len(classes) == 2:
        assert m['pos_class'] == 'AI'
        assert m['roc_auc'] == pytest.approx(skm.roc_auc_score(df.target == 'AI', df.prob_AI))
        assert m['average_precision'] == pytest.approx(skm.average_precision_score(df.target == 'AI', df.prob_AI))
        assert m['f1'] == pytest.approx(skm.f1_score(df.target, df.pred, pos_label='AI'))
        assert m['precision'] == pytest.approx(skm.precision_score(df.target, df.pred, pos_label='AI'))
        assert m['recall'] == pytest.approx(skm.recall_score(df.target, df.pred, pos_label='AI'))


def test_ece_toy():
    rng = np.random.default_rng(0); n = 100_000
    conf = rng.uniform(0.5, 1, n); y = (rng.uniform(size=n) < conf).astype(int)
    assert ece(conf, y) < 0.01                                   # perfectly calibrated -> ~0
    assert ece(np.full(100, 0.9), np.r_[np.ones(50), np.zeros(50)]) == pytest.approx(0.4)
    bins, e = reliability(fake_preds())
    assert bins['count'].sum() == 300 and 0 <= e <= 1


def test_bootstrap_contains_estimate_and_narrows():
    widths = []
    for n in (60, 600, 6000):
        est, lo, hi = bootstrap_ci(fake_preds(n=n, seed=1), 'accuracy', n=200, seed=0)
        assert lo <= est <= hi
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2] > 0
    t = metrics_table(fake_preds(), n=100)
    assert ((t.lo <= t.estimate) & (t.estimate <= t.hi)).all()



def test_wilson_ci_known_values():
    lo, hi = wilson_ci(28, 28)
    assert lo == pytest.approx(0.8794, abs=1e-4) and hi == 1.0
    assert wilson_ci(0, 28) == pytest.approx((0.0, 1 - 0.87936), abs=1e-4)
    assert wilson_ci(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_ci(1, 10) == pytest.approx((0.0179, 0.4042), abs=1e-4)
    assert all(np.isnan(wilson_ci(0, 0)))
    from scipy.stats import binomtest
    for k, n, a in [(3, 7, 0.05), (60, 75, 0.1), (999, 1000, 0.01)]:
        ci = binomtest(k, n).proportion_ci(confidence_level=1 - a, method='wilson')
        assert wilson_ci(k, n, a) == pytest.approx((ci.low, ci.high), abs=1e-9)
    with pytest.raises(ValueError, match='0 <= k <= n'): wilson_ci(5, 4)


def test_proportions_get_wilson_intervals():
    df = fake_preds(classes=('AI', 'human'), n=200, seed=3)
    ok = (df.target == df.pred).to_numpy()
    assert bootstrap_ci(df, 'accuracy')[1:] == pytest.approx(wilson_ci(ok.sum(), len(df)))
    tp = ((df.pred == 'AI') & (df.target == 'AI')).sum()
    t = metrics_table(df, n=50)
    assert tuple(t.loc['precision', ['lo', 'hi']]) == pytest.approx(wilson_ci(tp, (df.pred == 'AI').sum()))
    assert tuple(t.loc['recall', ['lo', 'hi']]) == pytest.approx(wilson_ci(tp, (df.target == 'AI').sum()))
    assert tuple(t.loc['top2_accuracy', ['lo', 'hi']]) == pytest.approx(wilson_ci(len(df), len(df)))
    assert t.attrs['ci_method']['roc_auc'] == 'bootstrap' and t.attrs['ci_method']['accuracy'] == 'wilson'
    # frac < 1: Wilson over frac x n trials, like the bootstrap's smaller resamples
    assert bootstrap_ci(df, 'accuracy', frac=0.2)[1:] == pytest.approx(wilson_ci(ok.mean() * 40, 40))
    # a callable and the named fast path share resamples for a bootstrapped metric
    named = bootstrap_ci(df, 'balanced_accuracy', n=100, seed=2)
    assert bootstrap_ci(df, lambda d: skm.balanced_accuracy_score(d.target, d.pred), n=100, seed=2) == pytest.approx(named)
    assert tuple(metrics_table(df, n=100, seed=2).loc['balanced_accuracy', ['lo', 'hi']]) == pytest.approx(named[1:])


def test_small_perfect_set_has_no_zero_width_interval():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({'target': ['AI'] * 12 + ['human'] * 16}); df['pred'] = df.target
    df['prob_AI'] = np.where(df.target == 'AI', rng.uniform(0.6, 1, 28), rng.uniform(0, 0.4, 28))
    df['prob_human'] = 1 - df.prob_AI
    t = metrics_table(df, n=100)
    assert list(t.index) == [m.format(k=2) for m in HEADLINE_METRICS]
    assert (t.estimate == 1.0).all()
    assert t.loc['accuracy', 'lo'] < 0.9 and t.loc['accuracy', 'hi'] == 1.0
    assert ((t.hi - t.lo) > 0).all() and ((t.lo <= t.estimate) & (t.estimate <= t.hi)).all()
    acc_lo = wilson_ci(28, 28)[0]
    assert (t.drop(index=['precision', 'recall']).lo <= acc_lo + 1e-12).all()   # at least the accuracy's Wilson interval
    for name in ('macro_f1', 'roc_auc', 'average_precision', 'f1'):
        est, lo, hi = bootstrap_ci(df, name, n=100)
        assert est == 1.0 and lo < 0.9 and hi == 1.0
    assert bootstrap_ci(df, lambda d: float((d.target == d.pred).mean()), n=100)[1] < 0.9
    # a metric outside [0, 1] is left alone
    assert bootstrap_ci(df, lambda d: 5.0, n=20)[1:] == (5.0, 5.0)

def test_extended_confusion_columns_sum_to_one():
    df = fake_preds(classes=('AI', 'human'), sources=('synth-sd', 'synth-wga', 'synth-dalle'))
    ec = extended_confusion(df)
    np.testing.assert_allclose(ec.sum(axis=0).values, 1.0)
    assert list(ec.index) == ['AI', 'human'] and ec.shape == (2, 3)


def test_threshold():
    df = fake_preds(classes=('AI', 'human'), n=400)
    t = binary_threshold(df, 'fpr', target_fpr=0.1)
    neg = df.target != 'AI'
    assert ((df.prob_AI >= t) & neg).sum() / neg.sum() <= 0.1
    out = apply_threshold(df, t)
    assert (out.pred == 'AI').sum() == (df.prob_AI >= t).sum()


def test_metrics_json_roundtrip_and_validation(tmp_path):
    res = dict(acc=np.float64(0.5), n=np.int32(3), bad=np.nan, inf=float('inf'), arr=np.array([1.5, np.nan]),
               table=metrics_table(fake_preds(), n=20))
    p = save_metrics(tmp_path, '02_analysis', 'S1', 'synthetic', tmp_path, {'lr': np.float32(1e-3)}, res)
    raw = p.read_text()
    assert 'NaN' not in raw and 'Infinity' not in raw
    d = json.loads(raw)                                   # strict JSON
    assert d['schema'] == METRICS_SCHEMA == 'artnb.metrics/1'
    assert set(d) == {'schema', 'notebook', 'paper', 'data', 'params', 'results', 'paper_reported', 'artnb_version', 'created'}
    assert d['results']['bad'] is None and d['results']['arr'] == [1.5, None] and d['results']['n'] == 3
    assert load_metrics(p)['data'] == {'kind': 'synthetic', 'path': str(tmp_path)}
    with pytest.raises(ValueError, match='data.kind'): validate_metrics({**d, 'data': {'kind': 'demo', 'path': None}})
    with pytest.raises(ValueError, match='schema'): validate_metrics({**d, 'schema': 'other/2'})
    with pytest.raises(ValueError, match='missing keys'): validate_metrics({k: v for k, v in d.items() if k != 'params'})
    (tmp_path / 'broken.json').write_text('{"schema":')
    with pytest.raises(ValueError, match='not valid JSON'): load_metrics(tmp_path / 'broken.json')
    with pytest.raises(ValueError, match='data_kind'): save_metrics(tmp_path, 'x', 'S1', 'maybe', None, {}, {})


# --- widgets, driven headless ------------------------------------------------------------------

def png_bytes(size=(32, 24), color=(220, 20, 20)):
    b = io.BytesIO(); Image.new('RGB', size, color).save(b, format='PNG'); return b.getvalue()


def bomb_png(w, h):
    b = bytearray(png_bytes((8, 8))); ihdr = b[12:29]; ihdr[4:12] = struct.pack('>II', w, h)
    b[12:29] = ihdr; b[29:33] = struct.pack('>I', zlib.crc32(bytes(ihdr)) & 0xffffffff)
    return bytes(b)


class RedPredictor:
    classes = ['blue', 'green', 'red']
    def predict(self, images):
        m = np.array([np.asarray(im, dtype=float).reshape(-1, 3).mean(0)[::-1] for im in images]) + 1
        P = m / m.sum(1, keepdims=True)
        return P, [self.classes[i] for i in P.argmax(1)]
    def cam(self, images): return [np.asarray(im, dtype=float)[..., 0] / 255 for im in images]


def test_prediction_viewer_headless():
    from artnb.widgets import PredictionViewer
    v = PredictionViewer(RedPredictor(), k=2, max_pixels=100_000, max_bytes=2**20)
    res = v.handle_uploads([('good.png', png_bytes()), ('notes.txt', b'plain text'),
                            ('oversized.png', png_bytes((500, 400))), ('bomb.png', bomb_png(40000, 40000)),
                            ('heavy.png', b'\x89PNG' + b'0' * (2**20 + 1))])
    assert [r['ok'] for r in res] == [True, False, False, False, False]
    assert res[0]['pred'] == 'red' and res[0]['topk'][0][0] == 'red' and len(res[0]['topk']) == 2
    assert res[0]['cam'].shape == (24, 32)
    assert len(v.messages) == 4
    assert 'not an image' in v.messages[0] and 'image too large' in v.messages[1]
    assert 'decompression bomb' in v.messages[2] and 'file too large' in v.messages[3]
    assert len(v.out.children) == 1
    # the FileUpload widget's observer runs the same path (ipywidgets 8 value: tuple of dicts)
    entry = dict(name='up.png', type='image/png', size=0, content=memoryview(png_bytes(color=(0, 0, 250))),
                 last_modified=datetime.datetime.now(datetime.timezone.utc))
    v.upload.value = (entry,)
    assert [r['pred'] for r in v.results] == ['blue'] and v.messages == []


def test_explorers_headless():
    from artnb.widgets import ConfusionExplorer, SourceExplorer
    df = fake_preds(n=60, classes=('AI', 'human'), sources=('synth-a', 'synth-b'))
    df['path'] = 'missing.png'                               # unreadable thumbnails are shown as text
    ce = ConfusionExplorer(df)
    ce.true_dd.value = 'AI'; ce.pred_dd.value = 'human'; ce.button.click()
    assert len(ce.selected) == ((df.target == 'AI') & (df.pred == 'human')).sum()
    se = SourceExplorer(df)
    se.pred_dd.value = 'AI'; se.source_dd.value = 'synth-b'; se.button.click()
    sel = (df.source == 'synth-b') & (df.pred == 'AI')
    assert len(se.selected) == sel.sum()
    assert se.fraction == pytest.approx(sel.sum() / (df.source == 'synth-b').sum())
