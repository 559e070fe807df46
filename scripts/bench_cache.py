#!/usr/bin/env python
"""Benchmark artnb.validate.cache_resized: one epoch of fastai DataLoaders over big JPEGs, with and without the cache.

Writes N synthetic JPEGs of SIDE px (artnb.synth.paint when available, otherwise a quick procedural generator;
both drawn at 1/4 size and upscaled), then times one full pass (train + valid, every image once) of `art_dls(..., size=SIZE, bs=BS,
num_workers=0)` over the originals and over a `cache_resized(max_side=CACHE_SIDE)` copy. Prints figures only
(no asserts). Synthetic images: decoding cost depends on pixel count and JPEG entropy, so real photos of paintings
decode at a similar but not identical speed.

    .venv/bin/python scripts/bench_cache.py [--n 500] [--side 2000] [--size 128] [--bs 32] [--cache-side 256]
"""
import argparse, shutil, tempfile, time
from pathlib import Path
import numpy as np, pandas as pd
from PIL import Image


def quick_painting(seed, side):
    "A textured procedural 'painting' drawn at 1/4 size and upscaled to `side` x 3/4 `side`"
    rng = np.random.default_rng(seed)
    w, h = side // 4, side * 3 // 16
    yy, xx = np.mgrid[0:h, 0:w] / w
    a = np.stack([np.sin(rng.uniform(2, 9) * (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1)) + rng.uniform(0, 6))
                  for _ in range(3)], -1)
    a = (a + 1) * 110 + rng.normal(0, 18, (h, w, 3))
    return Image.fromarray(a.clip(0, 255).astype(np.uint8)).resize((side, side * 3 // 4), Image.Resampling.BICUBIC)


def synth_painter():
    "artnb.synth.paint(painter, height, seed, width=...) drawn at 1/4 size and upscaled, or None when not available"
    try:
        from artnb.synth import paint, PAINTERS
        def _paint(seed, side):
            im = paint(PAINTERS[seed % len(PAINTERS)], side * 3 // 16, seed, width=side // 4)
            return im.convert('RGB').resize((side, side * 3 // 4), Image.Resampling.BICUBIC)
        _paint(0, 64)
        return _paint
    except Exception:
        return None


def epoch(dls):
    "Seconds and images for one pass over every train and valid image"
    n, t0 = 0, time.perf_counter()
    for dl in (dls.train.new(shuffle=True, drop_last=False), dls.valid):
        for xb, yb in dl: n += len(xb)
    return time.perf_counter() - t0, n


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n', type=int, default=500)
    p.add_argument('--side', type=int, default=2000)
    p.add_argument('--size', type=int, default=128)
    p.add_argument('--bs', type=int, default=32)
    p.add_argument('--cache-side', type=int, default=256)
    p.add_argument('--threads', type=int, default=1,
                   help='torch intra-op threads (default 1: on a shared 2-core machine more threads make torch.stack '
                        'in collation spin for 100s of ms per batch, hiding the decoding cost being measured)')
    p.add_argument('--dir', default=None, help='work folder (default: a temporary one, removed afterwards)')
    a = p.parse_args()
    import torch
    if a.threads: torch.set_num_threads(a.threads)
    from artnb.data import scan, art_dls
    from artnb.validate import cache_resized, validate

    work = Path(a.dir or tempfile.mkdtemp(prefix='bench_cache_'))
    try:
        painter = synth_painter()
        gen = 'artnb.synth.paint' if painter else 'quick_painting (artnb.synth.paint not available)'
        painter = painter or quick_painting
        t0 = time.perf_counter()
        for i in range(a.n):
            f = work/'imgs'/f'class_{i % 2}'/f'{i:04d}.jpg'
            if f.exists(): continue
            f.parent.mkdir(parents=True, exist_ok=True)
            painter(i, a.side).save(f, quality=90)
        t_gen = time.perf_counter() - t0
        items, bad = validate(scan(work/'imgs'), verbose=False, progress=False)
        items['split'] = np.where(np.arange(len(items)) % 10 == 0, 'valid', 'train')
        mb = items.nbytes.sum() / 2**20
        print(f"SYNTHETIC benchmark data: {len(items)} JPEGs, median {int(items.width.median())}x{int(items.height.median())} px, "
              f"{mb:.0f} MB, generator {gen} ({t_gen:.0f} s to write)")
        kw = dict(size=a.size, bs=a.bs, num_workers=0)

        t_raw, n_raw = epoch(art_dls(items, **kw))
        t0 = time.perf_counter()
        cached = cache_resized(items, work/'cache', max_side=a.cache_side, progress=False, verbose=False)
        t_build = time.perf_counter() - t0
        t0 = time.perf_counter(); cache_resized(items, work/'cache', max_side=a.cache_side, verbose=False, progress=False); t_hit = time.perf_counter() - t0
        t_cached, n_cached = epoch(art_dls(cached, **kw))

        print(f"one epoch, bs {a.bs}, size {a.size}, num_workers 0, torch threads {torch.get_num_threads()}:")
        print(f"  originals      : {t_raw:7.1f} s  {n_raw / t_raw:7.1f} images/s")
        print(f"  cache build    : {t_build:7.1f} s  (once; max side {a.cache_side}; re-check of a warm cache {t_hit:.1f} s)")
        print(f"  cached copies  : {t_cached:7.1f} s  {n_cached / t_cached:7.1f} images/s")
        print(f"  speed-up per epoch: {t_raw / t_cached:.1f}x   (first epoch incl. cache build: {t_raw / (t_build + t_cached):.1f}x)")
    finally:
        if not a.dir: shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
