"""Probe vs paper recipes vs the artnb recipe on a small folder-per-class dataset, by stratified k-fold CV.

    python scripts/bench_small_data.py DATA_DIR [--folds 5] [--img-size 224] [--epochs 6] [--arch tf_efficientnet_lite0]
    python scripts/bench_small_data.py --make-hard /tmp/hard [--classes 12 --per-class 10]   # write the hard synthetic set
    python scripts/bench_small_data.py DATA_DIR --target CLASS      # binary: CLASS vs the rest (few positives)
    python scripts/bench_small_data.py ITEMS.csv --group-by group   # grouped folds (tiles of one painting stay together)

Prints one table: mean ± sd (over folds) of accuracy, balanced accuracy and macro-F1, and fit seconds per fold,
for each recipe:
  probe      logistic regression on frozen, flip-averaged pooled features (C by inner CV on the training rows)
  paper-s3   S3's fine-tuning: GAP head, plain Adam, discriminative LRs 1e-6 / 1e-5 / 1e-3 for every layer from the start
  fastai     fastai's default `fine_tune(epochs, base_lr=2e-3, freeze_epochs=1)` with fastai's own head
  artnb      artnb.recipes.fit_artnb (head on the probe's features, started at the probe's solution, gently fine-tuned;
             the probe's solution is kept when fine-tuning does not beat it on validation: the last column says how often)

`--make-hard` writes the hard synthetic setting the closing notes report: many classes, few images per class and high
within-class variation (random crops, blending with another painter, colour shifts, grayscale, blur, JPEG), so a
recipe that memorises the training images loses.
"""
import argparse, json, os, sys, time, warnings
from pathlib import Path
import numpy as np, pandas as pd
from PIL import Image, ImageEnhance, ImageFilter

def make_hard(dest, n_classes=12, n_per_class=10, size=160, seed=0, blend_p=0.6) -> Path:
    "A folder-per-class set of artnb.synth paintings with strong within-class variation (`blend_p`: share blended with another painter)"
    from artnb.synth import paint, PAINTERS
    rng = np.random.default_rng(seed)
    dest = Path(dest); painters = list(PAINTERS)[:n_classes]
    for ci, p in enumerate(painters):
        d = dest / p.replace(' ', '_'); d.mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            big = int(size * 1.6)
            im = paint(p, big, seed=int(rng.integers(1 << 30)))
            s = int(big * rng.uniform(0.45, 1.0)); x, y = rng.integers(0, big - s + 1, 2)
            im = im.crop((int(x), int(y), int(x) + s, int(y) + s)).resize((size, size), Image.BICUBIC)
            if rng.random() < blend_p:   # another painter's layer on top: classes overlap
                other = painters[int(rng.integers(len(painters)))]
                im = Image.blend(im, paint(other, size, seed=int(rng.integers(1 << 30))), float(rng.uniform(0.2, 0.45)))
            hsv = np.asarray(im.convert('HSV')).copy()
            hsv[..., 0] = (hsv[..., 0].astype(int) + int(rng.integers(-20, 21))) % 256
            im = Image.fromarray(hsv, 'HSV').convert('RGB')
            im = ImageEnhance.Brightness(im).enhance(float(rng.uniform(0.7, 1.3)))
            im = ImageEnhance.Contrast(im).enhance(float(rng.uniform(0.7, 1.3)))
            if rng.random() < 0.2: im = im.convert('L').convert('RGB')
            if rng.random() < 0.3: im = im.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 2.0))))
            im.save(d / f'{p.replace(" ", "_")}_{i:03d}.jpg', quality=int(rng.integers(40, 91)))
    (dest / 'SYNTHETIC.json').write_text(json.dumps(dict(generator='scripts/bench_small_data.py --make-hard',
        n_classes=n_classes, n_per_class=n_per_class, size=size, seed=seed, blend_p=blend_p)) + '\n')
    return dest

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('data', nargs='?', help='folder-per-class dataset (or CSV)')
    ap.add_argument('--folds', type=int, default=5); ap.add_argument('--img-size', type=int, default=224)
    ap.add_argument('--epochs', type=int, default=6); ap.add_argument('--bs', type=int, default=16)
    ap.add_argument('--arch', default='tf_efficientnet_lite0'); ap.add_argument('--seed', type=int, default=42)
    ap.add_argument('--recipes', default='probe,paper-s3,fastai,artnb')
    ap.add_argument('--make-hard', metavar='DEST', help='write the hard synthetic set to DEST and exit')
    ap.add_argument('--classes', type=int, default=12); ap.add_argument('--per-class', type=int, default=10)
    ap.add_argument('--json', help='also write the table as JSON here')
    ap.add_argument('--target', help='binary task: this class against all others (the folds are stratified by it)')
    ap.add_argument('--group-by', help="column whose values never straddle folds (a CSV's group column is used anyway)")
    a = ap.parse_args(argv)
    if a.make_hard:
        print(make_hard(a.make_hard, a.classes, a.per_class, seed=a.seed)); return 0
    if not a.data: ap.error('DATA is required (or --make-hard DEST)')
    if a.folds < 2 or a.img_size < 32 or a.epochs < 1 or a.bs < 1: ap.error('need --folds >= 2, --img-size >= 32, --epochs >= 1, --bs >= 1')
    import torch
    if not torch.cuda.is_available() and (os.cpu_count() or 1) <= 4: torch.set_num_threads(os.cpu_count() or 1)
    from fastai.vision.all import BnFreeze
    from artnb.experiment import experiment_data, run_recipe, compare_runs
    from artnb.data import art_dls
    from artnb.learner import art_learner, fit_discriminative
    from artnb.backbones import model_stats
    from fastai.vision.all import vision_learner
    d = experiment_data(a.data, verbose=False, seed=a.seed, group_by=a.group_by)
    items = d.items
    kind = d.kind
    task = 'binary' if a.target else 'multiclass'
    if a.target and a.target not in set(items.label): ap.error(f'--target {a.target!r} is not a class: {sorted(set(items.label))}')
    what = (f"binary: {int((items.label == a.target).sum())} {a.target} vs {int((items.label != a.target).sum())} others" if a.target
            else f"{items.label.nunique()} classes")
    groups = f", {items['group'].nunique()} groups" if 'group' in items and items['group'].astype(str).str.len().gt(0).all() else ''
    print(f"[{kind} data] {len(items)} images, {what}{groups}, {a.folds}-fold CV, {a.arch} at {a.img_size} px")

    def paper_s3(it):
        dls = art_dls(it, task=task, target=a.target, size=a.img_size, resize='pad', aug='s3', bs=a.bs, seed=a.seed, normalize=model_stats(a.arch))
        learn = art_learner(dls, a.arch, head='gap', pretrained=True, opt='adam', lr=1e-3)
        with learn.no_bar(), learn.no_logging(), warnings.catch_warnings():
            warnings.simplefilter('ignore'); fit_discriminative(learn, a.epochs, lrs=[1e-6, 1e-5, 1e-3])
        return learn

    def fastai_default(it):
        dls = art_dls(it, task=task, target=a.target, size=a.img_size, aug='fastai', bs=a.bs, seed=a.seed, normalize=model_stats(a.arch))
        learn = art_learner(dls, a.arch, head='fastai', pretrained=True, opt='fastai-adam', lr=2e-3)
        with learn.no_bar(), learn.no_logging(), warnings.catch_warnings():
            warnings.simplefilter('ignore'); learn.fine_tune(a.epochs, base_lr=2e-3, freeze_epochs=1)
        return learn

    recipes = {'probe': 'probe', 'paper-s3': paper_s3, 'fastai': fastai_default, 'artnb': 'artnb'}
    runs = {}
    for name in a.recipes.split(','):
        if name not in recipes: ap.error(f'unknown recipe {name!r}: use {list(recipes)}')
        t0 = time.perf_counter()
        runs[name] = run_recipe(items, recipes[name], name=name, arch=a.arch, pretrained=True, size=a.img_size,
                                cv_folds=a.folds, seed=a.seed, n_boot=0, verbose=True, task=task, target=a.target,
                                **(dict(epochs=a.epochs, bs=a.bs) if name == 'artnb' else {}))
        print(f"   ({time.perf_counter() - t0:.0f} s)", flush=True)
    rows = []
    for k, r in runs.items():
        rows.append({'recipe': k, **{m: f"{r[m]:.3f} ± {r.sd(m):.3f}" for m in ('accuracy', 'balanced_accuracy', 'macro_f1')},
                     'fit s/fold': round(r.fit_s / r.k, 1),
                     'kept probe': (f"{sum(x.info.get('recipe_log', {}).get('kept') == 'probe' for x in r.runs)}/{r.k}" if k == 'artnb' else '')})
    tab = pd.DataFrame(rows).set_index('recipe')
    print(f"\n[{kind} data] {len(items)} images, {what}{groups}; mean ± sd over {a.folds} folds")
    print(tab.to_string())
    if a.json: Path(a.json).write_text(json.dumps({k: r.summary() for k, r in runs.items()}, indent=1, default=float))
    return 0

if __name__ == '__main__': sys.exit(main())
