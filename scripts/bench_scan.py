"""Scan, validate (threads, resumable cache) and the leakage check on 10k and 100k small synthetic image files.

    python scripts/bench_scan.py [--sizes 10000,100000] [--workers 2] [--root /tmp/artnb-bench-scan]

Writes (once, reused afterwards) folder-per-class datasets of small JPEGs (random 6x6 mosaics enlarged to 48x40 px, 10 classes; 1 % of the files are
re-encoded copies of another file, so the leakage check has near duplicates to find), then, in a fresh process per
size: `scan`, `validate(n_workers=W, cache=...)` from an empty cache, `validate` again from the full cache (what a
resumed or repeated run costs), `split_items` and `leakage_report`. Prints files/s for each step and the peak
resident memory (RSS) of the process, with the memory of the imports alone for reference, and the 100k / 10k ratios.
Figures only; nothing is asserted.
"""
import argparse, json, os, resource, subprocess, sys, time
from pathlib import Path

def make(root, n, seed=0):
    "n small JPEGs in 10 class folders under `root` (skipped when a complete set is there)"
    import numpy as np
    from PIL import Image
    root = Path(root); done = root/'.complete'
    if done.exists() and done.read_text() == str(n): return root
    rng = np.random.default_rng(seed)
    for i in range(n):
        d = root/f'class_{i % 10}'; d.mkdir(parents=True, exist_ok=True)
        if i % 100 == 99:   # a re-encoded copy of the previous file in another class folder: a near duplicate
            src = root/f'class_{(i - 1) % 10}'/f'{i - 1:06d}.jpg'
            Image.open(src).save(d/f'{i:06d}.jpg', quality=80); continue
        a = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)               # a random 6x6 mosaic, smoothly enlarged
        im = Image.fromarray(a).resize((48, 40), Image.BICUBIC)
        im.save(d/f'{i:06d}.jpg', quality=90)
    done.write_text(str(n))
    return root

def measure(root, workers):
    "One size, in this process: JSON line with the timings and peak RSS"
    import artnb.core   # noqa: F401  (the imports every artnb process pays)
    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    from artnb.data import scan, split_items
    from artnb.validate import validate, leakage_report
    cache = Path(root)/'.inspect.jsonl'
    if cache.exists(): cache.unlink()
    r = {}
    t = time.perf_counter(); items = scan(root, 'folder'); r['scan_s'] = time.perf_counter() - t
    t = time.perf_counter(); good, bad = validate(items, n_workers=workers, verbose=False, progress=False, cache=cache); r['validate_s'] = time.perf_counter() - t
    t = time.perf_counter(); good2, _ = validate(items, n_workers=workers, verbose=False, progress=False, cache=cache); r['validate_cached_s'] = time.perf_counter() - t
    assert len(good2) == len(good)
    import contextlib, io
    with contextlib.redirect_stdout(io.StringIO()): good = split_items(good, (0.8, 0.1, 0.1), seed=0)
    t = time.perf_counter(); leaks = leakage_report(good); r['leakage_s'] = time.perf_counter() - t
    r.update(n=len(items), good=len(good), bad=len(bad), near_pairs=int((leaks.kind == 'near').sum()),
             exact_pairs=int((leaks.kind == 'exact').sum()), import_mb=base_mb,
             peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(r))

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--sizes', default='10000,100000'); ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--root', default='/tmp/artnb-bench-scan'); ap.add_argument('--measure', default=None)
    a = ap.parse_args()
    if a.measure: return measure(a.measure, a.workers)
    rows = []
    for n in [int(s) for s in a.sizes.split(',')]:
        t = time.perf_counter(); root = make(Path(a.root)/f'n{n}', n); gen = time.perf_counter() - t
        out = subprocess.run([sys.executable, __file__, '--measure', str(root), '--workers', str(a.workers)],
                             capture_output=True, text=True)
        if out.returncode: sys.exit(out.stderr[-2000:])
        r = json.loads(out.stdout.strip().splitlines()[-1]); r['generate_s'] = gen; rows.append(r)
        print(f"{r['n']:>7} files: scan {r['n'] / r['scan_s']:8.0f} files/s | validate {r['n'] / r['validate_s']:6.0f} files/s "
              f"(cached re-run {r['n'] / r['validate_cached_s']:7.0f} files/s) | leakage check {r['leakage_s']:5.1f} s "
              f"({r['near_pairs']} near, {r['exact_pairs']} exact pairs) | peak RSS {r['peak_mb']:5.0f} MB "
              f"(imports alone {r['import_mb']:4.0f} MB)", flush=True)
    if len(rows) >= 2:
        a0, b0 = rows[0], rows[-1]
        print(f"{b0['n']} / {a0['n']} files: peak RSS x{b0['peak_mb'] / a0['peak_mb']:.2f}, above the imports "
              f"x{(b0['peak_mb'] - b0['import_mb']) / max(a0['peak_mb'] - a0['import_mb'], 1):.2f}; "
              f"leakage time x{b0['leakage_s'] / max(a0['leakage_s'], 1e-9):.1f}; validate time x{b0['validate_s'] / a0['validate_s']:.1f}")
    print(f"(workers {a.workers}; load average {os.getloadavg()[0]:.1f}; {os.cpu_count()} CPUs)")

if __name__ == '__main__': main()
