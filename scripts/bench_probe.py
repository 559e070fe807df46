"""What a frozen-feature probe should be: each choice on and off, on hard synthetic settings, by repeated k-fold CV.

    python scripts/bench_probe.py [--work DIR] [--img-size 128] [--repeats 2] [--settings hard12,few4,tiles] [--json OUT]

Features of the offline ImageNet EfficientNet-Lite0 are extracted once per image (and per flip) and cached in memory;
then every (features, classifier) pair is scored on the same folds:
  features   pooled   the body's final feature map, average-pooled (what artnb's probe used)
             flip     pooled, averaged with the horizontally flipped image's
             stages   channel mean and standard deviation of every intermediate stage (the classic style statistics)
             both     pooled + stages
  classifier library  artnb.recipes.fit_probe: standardise, class-balanced logistic regression, C by inner CV (log loss)
             plain    LogisticRegression(C=1) on raw features (the plain sklearn probe)
             plain-bal the same, class-balanced
             pca      standardise -> PCA(64) -> class-balanced logistic regression (C=1)
Settings (all SYNTHETIC, written by scripts/bench_small_data.make_hard):
  hard12  12 painters x 10 images, crops + blends with another painter + colour/blur/JPEG: classes overlap
  few4    4 paintings of one painter vs 110 of 11 others (binary, imbalanced)
  tiles   12 painters x 4 paintings, 6 tiles cut from each; grouped folds (a painting's tiles never straddle folds)
Prints balanced accuracy (mean ± sd over folds x repeats) per setting; few4 adds ROC-AUC.
"""
import argparse, json, sys, time, warnings
from pathlib import Path
import numpy as np, pandas as pd

def stage_hooks(body):
    "Forward hooks collecting (mean, std) over space of every stage's output; returns (hooks, store)"
    import torch, torch.nn as nn
    m = getattr(body, 'model', body)
    stages = list(m.blocks) if hasattr(m, 'blocks') else [c for c in body.children() if isinstance(c, nn.Module)]
    store = []
    def hook(mod, inp, out):
        o = out.float()
        store.append(torch.cat([o.mean((2, 3)), o.flatten(2).std(2, correction=0)], 1))
    return [s.register_forward_hook(hook) for s in stages], store

FEATURES = ('pooled', 'flip', 'stages', 'both')

def extract(paths, size, flip=False):
    "{'pooled', 'flip', 'stages'} feature arrays for `paths` (Lite0, offline ImageNet weights, squish to `size`)"
    import torch
    from artnb.recipes import image_tensor
    from artnb.backbones import create_body_and_stats
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); body, stats = create_body_and_stats('tf_efficientnet_lite0', True)
    body.eval()
    hooks, store = stage_hooks(body)
    out = {'pooled': [], 'flip': [], 'stages': []}
    with torch.inference_mode():
        for i in range(0, len(paths), 32):
            xb = torch.stack([image_tensor(p, size, 'squish', stats) for p in paths[i:i + 32]])
            store.clear(); f = body(xb).float().mean((2, 3))
            st = torch.cat(list(store), 1)
            store.clear(); ff = body(xb.flip(-1)).float().mean((2, 3)); store.clear()
            out['pooled'].append(f.numpy()); out['flip'].append(((f + ff) / 2).numpy()); out['stages'].append(st.numpy())
    for h in hooks: h.remove()
    out = {k: np.concatenate(v) for k, v in out.items()}
    out['both'] = np.concatenate([out['pooled'], out['stages']], 1)
    return {k: v for k, v in out.items() if k in FEATURES}

def classifiers(seed):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.decomposition import PCA
    from artnb.recipes import fit_probe
    class Lib:
        def fit(self, X, y): self.m = fit_probe(X, y.astype(str), seed=seed); return self
        def predict_proba(self, X): return self.m.predict_proba(X)
        @property
        def classes_(self): return self.m.classes_
    def pca(X):
        n = min(64, X.shape[0] - 1, X.shape[1])
        return make_pipeline(StandardScaler(), PCA(n, random_state=seed), LogisticRegression(C=1., max_iter=3000, class_weight='balanced'))
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    def inner(scale, scoring, grid=(0.01, 0.1, 1., 10.)):
        def mk(X):
            steps = ([StandardScaler()] if scale else []) + [LogisticRegression(max_iter=3000, class_weight='balanced')]
            return GridSearchCV(make_pipeline(*steps), {'logisticregression__C': list(grid)}, scoring=scoring,
                                cv=StratifiedKFold(3, shuffle=True, random_state=seed))
        return mk
    return {'library': lambda X: Lib(), 'plain': lambda X: LogisticRegression(C=1., max_iter=3000),
            'std-cv-bacc': inner(True, 'balanced_accuracy'), 'raw-cv-logloss': inner(False, 'neg_log_loss'),
            'plain-bal': lambda X: LogisticRegression(C=1., max_iter=3000, class_weight='balanced'), 'pca': pca}

def score(feats, y, groups, folds, repeats, seed):
    from sklearn.model_selection import StratifiedKFold, StratifiedGroupKFold
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score
    from threadpoolctl import threadpool_limits
    rows = []
    ys = y.astype(str); binary = len(np.unique(ys)) == 2
    for fname, X in feats.items():
        for cname, mk in classifiers(seed).items():
            ba, auc = [], []
            for r in range(repeats):
                k = min(folds, pd.Series(ys).value_counts().min())
                cv = StratifiedGroupKFold(k, shuffle=True, random_state=seed + r) if groups is not None else StratifiedKFold(k, shuffle=True, random_state=seed + r)
                for tr, te in cv.split(X, ys, groups):
                    with warnings.catch_warnings(), threadpool_limits(1):
                        warnings.simplefilter('ignore'); m = mk(X).fit(X[tr], ys[tr])
                    P = m.predict_proba(X[te]); cl = [str(c) for c in m.classes_]
                    ba.append(balanced_accuracy_score(ys[te], np.array(cl)[P.argmax(1)]))
                    if binary and len(np.unique(ys[te])) == 2: auc.append(roc_auc_score(ys[te] == cl[1], P[:, 1]))
            rows.append(dict(features=fname, classifier=cname, bal_acc=np.mean(ba), bal_acc_sd=np.std(ba), n_folds=len(ba),
                             auc=np.mean(auc) if auc else None, auc_sd=np.std(auc) if auc else None))
    return pd.DataFrame(rows)

def make_setting(name, work, seed):
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_small_data import make_hard
    from artnb.data import scan
    d = Path(work)/name
    if name == 'hard12':
        if not d.exists(): make_hard(d, 12, 10, size=160, seed=seed)
        it = scan(d); return it, it['label'].to_numpy(), None
    if name == 'few4':
        from bench_few_positives import make_few_positives
        if not d.exists(): make_few_positives(d, n_pos=4, seed=seed, blend_p=0.3)
        it = scan(d/'train'); y = np.where(it['label'] == 'Synth_Van_Gogh', 'target', 'other'); return it, y, None
    if name == 'tiles':
        from PIL import Image
        src = Path(work)/'tiles-src'
        if not src.exists(): make_hard(src, 12, 4, size=384, seed=seed, blend_p=0.3)
        if not d.exists():
            rows = []
            for f in sorted(src.rglob('*.jpg')):
                im = Image.open(f).convert('RGB'); W = im.size[0]; t = W // 3
                for i, (x, yy) in enumerate([(0, 0), (t, 0), (2 * t, 0), (0, t), (t, t), (2 * t, 2 * t)]):
                    out = d/f.parent.name/f'{f.stem}_t{i}.jpg'; out.parent.mkdir(parents=True, exist_ok=True)
                    im.crop((x, yy, x + t, yy + t)).save(out, quality=90); rows.append(dict(path=str(out), label=f.parent.name, group=f.stem))
            pd.DataFrame(rows).to_csv(d/'items.csv', index=False)
            (d/'SYNTHETIC.json').write_text(json.dumps(dict(generator='scripts/bench_probe.py tiles', source=str(src))))   # scan: synthetic data
        it = pd.read_csv(d/'items.csv'); return it, it['label'].to_numpy(), it['group'].to_numpy()
    raise SystemExit(f"unknown setting {name}")

def main(argv=None):
    global FEATURES
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--work', default='/tmp/artnb-bench-probe'); ap.add_argument('--img-size', type=int, default=128)
    ap.add_argument('--repeats', type=int, default=2); ap.add_argument('--folds', type=int, default=5)
    ap.add_argument('--settings', default='hard12,few4,tiles'); ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--json'); ap.add_argument('--features', default=','.join(FEATURES))
    a = ap.parse_args(argv)
    FEATURES = tuple(a.features.split(','))
    import torch; torch.set_num_threads(2)
    res = {}
    for s in a.settings.split(','):
        t0 = time.time()
        items, y, groups = make_setting(s, a.work, a.seed)
        feats = extract(list(items['path']), a.img_size)
        tab = score(feats, y, groups, a.folds, a.repeats, a.seed)
        res[s] = tab
        print(f"\n[SYNTHETIC] {s}: {len(items)} images, {len(np.unique(y))} classes" + (f", {len(np.unique(groups))} groups (grouped folds)" if groups is not None else '')
              + f"; Lite0 at {a.img_size} px; {a.folds}-fold x {a.repeats}; balanced accuracy mean ± sd over folds ({time.time() - t0:.0f} s)")
        piv = tab.assign(v=[f"{m:.3f} ± {sd:.3f}" for m, sd in zip(tab.bal_acc, tab.bal_acc_sd)]).pivot(index='features', columns='classifier', values='v')
        print(piv.to_string())
        if tab['auc'].notna().any():
            pa = tab.assign(v=[f"{m:.3f} ± {sd:.3f}" for m, sd in zip(tab.auc, tab.auc_sd)]).pivot(index='features', columns='classifier', values='v')
            print('ROC-AUC:'); print(pa.to_string())
    if a.json: Path(a.json).write_text(json.dumps({k: v.to_dict('records') for k, v in res.items()}, indent=1, default=float))
    return 0

if __name__ == '__main__': sys.exit(main())
