#!/usr/bin/env python
"""The light install against the full one: install size, import + load time, peak RSS and images/s of predicting files.

    .venv/bin/python scripts/bench_light.py [--size 224] [--images 64] [--bs 16] [--threads 2]

Builds an EfficientNet-Lite0 model folder (offline ImageNet weights, 'gap' head; speed does not depend on the head's
values), exports model.onnx, builds the light environment (scripts/light_env.py: exactly the distributions `artnb[onnx]`
needs, linked from this one) and then, each in a fresh process:
  light   `artnb.runtime.load_onnx(...).predict(files)` in the light environment (numpy + onnxruntime)
  full    the same call in the full environment (this one)
  torch   `artnb.inference.load_model(...).predict(files)`, the PyTorch backend, in the full environment
Import + load is the time from process start to a loaded predictor; images/s is the end-to-end `predict` on the files
(decode, resize, normalise, network, decision), best of 2. Install size: the light closure's files vs this environment's
site-packages. Prints a table; asserts nothing.
"""
import argparse, json, os, subprocess, sys, sysconfig, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import light_env

CHILD = r"""
import os, sys, time, json
t0 = time.perf_counter()
backend, d, bs, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
files = sys.argv[5:]
if backend == 'torch':
    import torch; torch.set_num_threads(threads)
    from artnb.inference import load_model
    p = load_model(d, device='cpu')
else:
    from artnb.runtime import load_onnx, OnnxModel
    p = load_onnx(d); p.model = OnnxModel(os.path.join(d, 'model.onnx'), threads=threads)
load_s = time.perf_counter() - t0
p.predict(files[:bs], bs=bs)   # warm-up
best = float('inf')
for _ in range(2):
    t = time.perf_counter(); r = p.predict(files, bs=bs); best = min(best, time.perf_counter() - t)
heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'fastai', 'timm'})
hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]   # this process's peak RSS (ru_maxrss survives exec from a big parent)
print(json.dumps(dict(load_s=load_s, img_s=len(files) / best, rss_mb=int(hwm.split()[1]) / 1024,
                      heavy=heavy, first=r.probs[0].tolist())))
"""


def du(path) -> int:
    n = 0
    for dp, _, fns in os.walk(path):
        for f in fns:
            p = os.path.join(dp, f)
            if not os.path.islink(p): n += os.path.getsize(p)
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--size', type=int, default=224); ap.add_argument('--images', type=int, default=64)
    ap.add_argument('--bs', type=int, default=16); ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    from artnb.synth_data import make_dataset
    from artnb.data import scan, split_items, art_dls
    from artnb.learner import art_learner
    from artnb.inference import save_model
    from artnb.export import export_onnx
    tmp = Path(tempfile.mkdtemp())
    items = split_items(scan(make_dataset('folder', tmp/'data', n_per_class=max(2, a.images // 2), size=320, seed=0,
                                         painters=['Synth Monet', 'Synth Rothko'])), (0.5, 0.5), seed=0)
    files = sorted(map(str, items.path))[:a.images]
    learn = art_learner(art_dls(items, size=a.size, bs=4), 'tf_efficientnet_lite0', head='gap', pretrained=True)
    d = save_model(learn, tmp/'model'); export_onnx(d)
    py_light = light_env.build(tmp/'light')
    res = {}
    for name, py, backend in [('light', py_light, 'onnx'), ('full', sys.executable, 'onnx'), ('torch', sys.executable, 'torch')]:
        r = subprocess.run([str(py), '-c', CHILD, backend, str(d), str(a.bs), str(a.threads), *files], capture_output=True, text=True)
        if r.returncode: raise SystemExit(f"{name}: {r.stderr[-2000:]}")
        res[name] = json.loads(r.stdout.strip().splitlines()[-1])
    light_mb = light_env.size_of(light_env.closure(('onnx',))) / 2**20
    full_mb = du(sysconfig.get_paths()['purelib']) / 2**20
    print(f"EfficientNet-Lite0 at {a.size} px, {len(files)} synthetic 320 px PNG files, batches of {a.bs}, {a.threads} threads (CPU)")
    print(f"install: light (artnb[onnx]) {light_mb:.0f} MiB; full environment {full_mb:.0f} MiB")
    print(f"{'path':<8} {'import+load s':>14} {'peak RSS MiB':>13} {'images/s':>9}  heavy modules imported")
    for k, v in res.items():
        print(f"{k:<8} {v['load_s']:>14.2f} {v['rss_mb']:>13.0f} {v['img_s']:>9.1f}  {', '.join(v['heavy']) or 'none'}")
    print(json.dumps(dict(size=a.size, images=len(files), bs=a.bs, threads=a.threads, light_mib=round(light_mb), full_mib=round(full_mb),
                          **{k: {m: v[m] for m in ('load_s', 'rss_mb', 'img_s', 'heavy')} for k, v in res.items()})))


if __name__ == '__main__': main()
