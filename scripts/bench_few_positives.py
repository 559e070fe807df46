"""Few positives: can a saved artnb model find a painter it saw only 4 times?

    python scripts/bench_few_positives.py [--work DIR] [--n-pos 4] [--img-size 96] [--recipe artnb] [--seeds 0,1]

Writes a hard synthetic set (`bench_small_data.make_hard`: crops, colour shifts, blur, JPEG; `--blend 0.6` also
blends with another painter) where one painter (the target) has `--n-pos` training images among ~110 of 11 other painters, trains
`artnb-train --task binary --target <painter>` on it (the model it saves, with its stored decision rule), then predicts
8 NEW paintings of the target and 36 new paintings of the others with the saved model. Prints, per seed: the
out-of-fold ranking AUC of the probe on the training set (is the target separable at all?), the stored rule, the recall
on the 8 new positives and the false-positive rate on the 36 new negatives (SYNTHETIC DATA, small samples: each
rate comes with its Wilson 95 % interval).
"""
import argparse, json, shutil, sys, time
from pathlib import Path
import numpy as np

def make_few_positives(dest, target='Synth Van Gogh', n_pos=4, n_neg_per_class=10, n_new_pos=8, n_new_neg=36, size=128, seed=0, blend_p=0.0):
    "DEST/train/<painter>/ (n_pos of the target, n_neg_per_class of 11 others) and DEST/new/<painter>/ (unseen paintings)"
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_small_data import make_hard
    dest = Path(dest); pool = dest/'pool'
    per = max(n_pos + n_new_pos, n_neg_per_class + -(-n_new_neg // 11))
    make_hard(pool, n_classes=12, n_per_class=per, size=size, seed=seed, blend_p=blend_p)
    painters = sorted(d.name for d in pool.iterdir() if d.is_dir())
    tname = target.replace(' ', '_'); others = [p for p in painters if p != tname]
    if tname not in painters: raise SystemExit(f"{target} is not one of the 12 painters {painters}")
    rng = np.random.default_rng(seed); new_neg = {p: 0 for p in others}
    for i in range(n_new_neg): new_neg[others[i % len(others)]] += 1
    for p in painters:
        files = sorted((pool/p).glob('*.jpg')); rng.shuffle(files)
        n_tr, n_nw = (n_pos, n_new_pos) if p == tname else (n_neg_per_class, new_neg[p])
        for part, fs in (('train', files[:n_tr]), ('new', files[n_tr:n_tr + n_nw])):
            (dest/part/p).mkdir(parents=True, exist_ok=True)
            for f in fs: shutil.copy(f, dest/part/p/f.name)
    for part in ('train', 'new'): shutil.copy(pool/'SYNTHETIC.json', dest/part/'SYNTHETIC.json')
    shutil.rmtree(pool)
    return dest/'train', dest/'new'

def probe_oof_auc(train_dir, target, img_size, seed):
    "Out-of-fold ROC-AUC of the library's probe for target-vs-rest on the training set (stratified 4-fold)"
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from artnb.data import scan
    from artnb.recipes import extractor, fit_probe
    items = scan(train_dir)
    y = (items['label'] == target.replace(' ', '_')).to_numpy().astype(int)
    X = extractor('tf_efficientnet_lite0', True, img_size, 'squish', flip=False)(items['path'])
    s = np.zeros(len(y))
    for tr, te in StratifiedKFold(min(4, int(y.sum())), shuffle=True, random_state=seed).split(X, y):
        pr = fit_probe(X[tr], y[tr].astype(str), seed=seed)
        s[te] = pr.predict_proba(X[te])[:, list(pr.classes_).index('1')]
    return float(roc_auc_score(y, s))

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--work', default='/tmp/artnb-few-positives'); ap.add_argument('--target', default='Synth Van Gogh')
    ap.add_argument('--n-pos', type=int, default=4); ap.add_argument('--img-size', type=int, default=96)
    ap.add_argument('--epochs', type=int, default=4); ap.add_argument('--recipe', default='artnb')
    ap.add_argument('--seeds', default='0,1'); ap.add_argument('--blend', type=float, default=0.0, help='share of images blended with another painter (0.6: the hard set, where the target is barely separable)'); ap.add_argument('--json', help='also write the rows as JSON here')
    a = ap.parse_args(argv)
    from artnb.training import train_model
    from artnb.inference import load_model
    from artnb.data import scan
    from artnb.analysis import wilson_ci
    rows = []
    for seed in [int(s) for s in a.seeds.split(',')]:
        t0 = time.time()
        work = Path(a.work)/f'seed{seed}'
        if work.exists(): shutil.rmtree(work)
        train_dir, new_dir = make_few_positives(work, a.target, a.n_pos, seed=seed, blend_p=a.blend)
        tname = a.target.replace(' ', '_')
        auc = probe_oof_auc(train_dir, a.target, a.img_size, seed)
        res = train_model(str(train_dir), work/'model', recipe=a.recipe, arch='tf_efficientnet_lite0', pretrained=True,
                          img_size=a.img_size, epochs=a.epochs, bs=16, task='binary', target=tname, seed=seed,
                          ratios=(0.7, 0.2, 0.1), verbose=False, n_boot=0)
        pred = load_model(work/'model')
        new = scan(new_dir)
        r = pred.predict(new)
        called = np.array([l != 'other' for l in r.labels]); pos = (new['label'] == tname).to_numpy()
        tp, fp = int((called & pos).sum()), int((called & ~pos).sum())
        row = dict(seed=seed, probe_oof_auc=round(auc, 3), temperature=res['calibration']['temperature'],
                   threshold=res['calibration']['threshold'], notes=res['calibration']['notes'],
                   recall=tp / pos.sum(), recall_ci=wilson_ci(tp, int(pos.sum())), n_new_pos=int(pos.sum()),
                   fpr=fp / (~pos).sum(), fpr_ci=wilson_ci(fp, int((~pos).sum())), n_new_neg=int((~pos).sum()),
                   p_target_new_pos=[round(float(v), 3) for v in r.probs[pos][:, pred.pos_index]], seconds=round(time.time() - t0))
        rows.append(row)
        print(f"[SYNTHETIC, seed {seed}] {a.n_pos} positives among {len(scan(train_dir))} training images; probe OOF AUC {auc:.3f}; "
              f"rule T={row['temperature']:.3g} t={row['threshold']}; new positives found {tp}/{pos.sum()} "
              f"(recall {row['recall']:.2f} [{row['recall_ci'][0]:.2f}, {row['recall_ci'][1]:.2f}]), false positives {fp}/{(~pos).sum()} "
              f"(FPR {row['fpr']:.2f} [{row['fpr_ci'][0]:.2f}, {row['fpr_ci'][1]:.2f}]); p(target) of new positives {row['p_target_new_pos']} ({row['seconds']} s)")
        for n in row['notes']: print('   ', n)
    if a.json: Path(a.json).write_text(json.dumps(rows, indent=1, default=float) + '\n')
    return 0

if __name__ == '__main__': sys.exit(main())
