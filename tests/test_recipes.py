"""The probe, k-fold CV and the artnb recipe on SYNTHETIC data, with tests that fail if folds leak, if the probe
sees evaluation images while choosing its regularisation, if TTA is silently off, or if an imbalanced binary task
collapses onto the majority class without a warning."""
import numpy as np, pandas as pd, pytest, torch
from PIL import Image

from artnb.recipes import kfold_splits, fit_probe, probe_predictions, extractor, fit_artnb
from artnb.experiment import run_recipe, collapse_warning, CVRun
from artnb.data import scan, split_items, art_dls
from artnb.validate import validate
from artnb.learner import art_learner
from artnb.backbones import model_stats
from artnb.synth_data import make_dataset
from artnb.synth import paint


@pytest.fixture(scope='module')
def three(tmp_path_factory):
    root = make_dataset('folder', tmp_path_factory.mktemp('s') / 'f', n_per_class=9, size=48, seed=3,
                        painters=['Synth Mondrian', 'Synth Rothko', 'Synth Hokusai'])
    good, _ = validate(scan(root), progress=False, verbose=False)
    return split_items(good, ratios=(0.6, 0.2, 0.2), seed=0)


def test_folds_never_split_a_group(three):
    items = three.assign(group=[f'painting{i // 3}' for i in range(len(three))])   # three crops per painting
    for f in kfold_splits(items, k=3, seed=1):
        test_groups = set(f.loc[f.split == 'test', 'group'])
        assert not test_groups & set(f.loc[f.split != 'test', 'group']), 'a group is on both sides of a fold'
    # ignoring the groups, the same items DO get split across folds (so the check above can fail)
    crossed = any(set(f.loc[f.split == 'test', 'group']) & set(f.loc[f.split != 'test', 'group'])
                  for f in kfold_splits(items, k=3, seed=1, group_col='no_such_column'))
    assert crossed


def test_probe_chooses_regularisation_on_training_rows_only(three, monkeypatch):
    seen = []
    import artnb.recipes as R
    real = R.fit_probe
    def spy(X, y, **kw):
        seen.append(len(X)); return real(X, y, **kw)
    monkeypatch.setattr(R, 'fit_probe', spy)
    tr, ev = three[three.split != 'test'], three[three.split == 'test']
    preds, _ = probe_predictions(tr, ev, 'simple_cnn', pretrained=False, size=32)
    assert seen == [len(tr)], 'the probe was fitted on rows other than the training rows'
    assert sorted(preds['path']) == sorted(ev['path'])


def test_cv_evaluates_every_image_once_and_tta_is_on(three):
    def tiny(items):
        dls = art_dls(items, size=32, bs=8, aug='s3', normalize=model_stats('simple_cnn'))
        learn = art_learner(dls, 'simple_cnn', head='gap', pretrained=False)
        with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
        return learn
    cv = run_recipe(three, tiny, cv_folds=3, n_boot=0, tta=True, verbose=False)
    assert isinstance(cv, CVRun) and cv.k == 3
    assert sorted(cv.preds['path']) == sorted(three['path'])
    for r in cv.runs:
        a, b = r.tta_preds.filter(like='prob_').to_numpy(), r.preds.filter(like='prob_').to_numpy()
        assert not np.allclose(a, b), 'TTA gave exactly the plain predictions'
    def noaug(items):
        dls = art_dls(items, size=32, bs=8, aug='none', normalize=model_stats('simple_cnn'))
        return art_learner(dls, 'simple_cnn', head='gap', pretrained=False)
    with pytest.raises(ValueError, match='no random augmentation'):
        run_recipe(three, noaug, n_boot=0, tta=True, verbose=False)


@pytest.fixture(scope='module')
def imbalanced(tmp_path_factory):
    "Target vs rest at about 1:24 in every split: 12 'Synth Van Gogh' paintings among 288 from five other painters"
    root = tmp_path_factory.mktemp('imb')
    rng = np.random.default_rng(0)
    others = ['Synth Monet', 'Synth Seurat', 'Synth Turner', 'Synth Munch', 'Synth Klimt']
    rows = []
    for i in range(300):
        p = 'Synth Van Gogh' if i % 25 == 0 else others[i % len(others)]
        f = root / f'{i:03d}.png'; paint(p, 64, seed=int(rng.integers(1 << 30))).save(f)
        rows.append(dict(path=str(f), label='vangogh' if p == 'Synth Van Gogh' else 'other'))
    items = pd.DataFrame(rows)
    return split_items(items.assign(source='synth', split=''), ratios=(0.5, 0.25, 0.25), seed=0)


def test_imbalanced_binary_collapse_is_reported_and_artnb_recognises_target(imbalanced):
    def collapsed(items):   # a model that answers the majority class for everything (its head's bias says so)
        dls = art_dls(items, size=64, bs=32, normalize=model_stats('tf_efficientnet_lite0'))
        learn = art_learner(dls, 'tf_efficientnet_lite0', head='gap', pretrained=True)
        lin = learn.model[1][-1]
        with torch.no_grad():
            lin.weight.zero_(); lin.bias.copy_(torch.tensor([5.0 if c == 'other' else -5.0 for c in dls.vocab]))
        return learn
    p = run_recipe(imbalanced, collapsed, n_boot=0, verbose=False)
    assert p.preds['pred'].nunique() == 1 and p.warnings and "predicts 'other' for all" in p.warnings[0]
    def paper(items):   # an unweighted frozen-body head, briefly trained: the warning appears exactly when it collapses
        dls = art_dls(items, size=64, bs=32, normalize=model_stats('tf_efficientnet_lite0'))
        learn = art_learner(dls, 'tf_efficientnet_lite0', head='gap', pretrained=True, lr=1e-3)
        with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
        return learn
    q = run_recipe(imbalanced, paper, n_boot=0, verbose=False)
    assert bool(q.warnings) == (q.preds['pred'].nunique() == 1)
    a = run_recipe(imbalanced, 'artnb', size=64, epochs=1, n_boot=0, verbose=False)
    ev = a.preds[a.preds['target'] == 'vangogh']
    assert len(ev) >= 3
    assert (ev['pred'] == 'vangogh').mean() > 0.5, a.preds[['target', 'pred', 'prob_vangogh']]
    assert a['balanced_accuracy'] > p['balanced_accuracy'] and not a.warnings
    assert a.info['recipe_log']['refit_head'] and a.threshold is None   # no threshold from rows the head was fitted on


def test_artnb_keeps_the_stage_probe_and_it_saves_as_that_probe(three, tmp_path):
    "Fine-tuning that cannot improve (lr 0) leaves the probe's solution: a 'stages' head that IS the (flip-averaged) probe refitted on train + valid, saved and reloaded unchanged"
    from artnb.inference import save_model, load_model
    learn = fit_artnb(three, 'tf_efficientnet_lite0', size=64, epochs=1, lr=0.0, bs=8)
    log = learn.art.training['recipe']
    assert log['kept'] == 'probe' and 'did not improve' in log['why'] and log['tuned_valid_ba'] == log['start_valid_ba']
    assert learn.art.head == 'stages' and log['features'] == 'stages'
    fit_rows, ev = three[three.split != 'test'], three[three.split == 'test']
    assert learn.art.tfms.get('flip_average')   # the probe reads flip-averaged features, and so does the saved model
    fx = extractor('tf_efficientnet_lite0', True, 64, 'squish', flip=True, features='stages')
    probe = fit_probe(fx(fit_rows['path']), fit_rows['label'].to_numpy())
    want = probe.predict_proba(fx(ev['path']))[:, [list(probe.classes_).index(c) for c in learn.dls.vocab]]
    got = np.exp(load_model(save_model(learn, tmp_path / 'm')).predict_logits(list(ev['path'])))
    got = got / got.sum(1, keepdims=True)
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_artnb_never_ends_below_its_start_on_validation(three):
    learn = fit_artnb(three, 'tf_efficientnet_lite0', size=64, epochs=2, lr=3e-3, bs=8, features='both')
    log = learn.art.training['recipe']
    assert learn.art.head == 'stages_gap' and log['kept'] in ('probe', 'fine-tuned')
    if log['kept'] == 'fine-tuned': assert log['tuned_valid_ba'] >= log['start_valid_ba']
