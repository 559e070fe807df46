#!/usr/bin/env python
"""CPU images/s of a saved artnb model on its two backends: PyTorch and onnxruntime (`model.onnx` from artnb-export-onnx).

Builds a model folder (EfficientNet-Lite0 with its offline ImageNet weights and the 'gap' head, untrained head: speed does
not depend on the head's values), exports it, and times the network alone on pre-built normalised batches (the part
the backend changes), best of `--repeats` after a warm-up, with both backends limited to the same `--threads`.
Also reports the parity: max |p_onnx - p_torch| over the timed batches. Prints a table; asserts nothing.

    .venv/bin/python scripts/bench_onnx.py --size 224 --bs 16 --threads 2
"""
import argparse, json, tempfile, time
from pathlib import Path
import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--arch', default='tf_efficientnet_lite0'); ap.add_argument('--size', type=int, default=224)
    ap.add_argument('--bs', type=int, default=16); ap.add_argument('--batches', type=int, default=4)
    ap.add_argument('--repeats', type=int, default=3); ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from artnb.synth_data import make_dataset
    from artnb.data import scan, split_items, art_dls
    from artnb.learner import art_learner
    from artnb.inference import save_model, load_model
    from artnb.export import export_onnx
    from artnb.runtime import OnnxModel
    tmp = Path(tempfile.mkdtemp())
    items = split_items(scan(make_dataset('folder', tmp/'data', n_per_class=4, size=64, seed=0,
                                         painters=['Synth Monet', 'Synth Rothko', 'Synth Hokusai'])), (0.5, 0.5), seed=0)
    learn = art_learner(art_dls(items, size=a.size, bs=4), a.arch, head='gap', pretrained=a.arch == 'tf_efficientnet_lite0')
    d = save_model(learn, tmp/'model')
    t0 = time.time(); meta = export_onnx(d); export_s = time.time() - t0
    pt = load_model(d, device='cpu')
    po = load_model(d, backend='onnx'); po.model = OnnxModel(d/'model.onnx', threads=a.threads)
    xs = [torch.randn(a.bs, 3, a.size, a.size, generator=torch.Generator().manual_seed(i)) for i in range(a.batches)]
    def run(model):
        with torch.inference_mode(): return [model(x).float() for x in xs]
    res, outs = {}, {}
    for name, m in [('pytorch', pt.model), ('onnxruntime', po.model)]:
        run(m)   # warm-up
        best = float('inf')
        for _ in range(a.repeats):
            t = time.perf_counter(); outs[name] = run(m); best = min(best, time.perf_counter() - t)
        res[name] = a.bs * a.batches / best
    diff = max(float((torch.softmax(p, -1) - torch.softmax(o, -1)).abs().max()) for p, o in zip(outs['pytorch'], outs['onnxruntime']))
    print(f"{a.arch} at {a.size} px, batches of {a.bs}, {a.threads} threads, torch {torch.__version__}, "
          f"model.onnx {meta['bytes']/1e6:.1f} MB (export {export_s:.1f} s)")
    print(f"{'backend':<12} {'images/s':>9}")
    for k, v in res.items(): print(f"{k:<12} {v:>9.1f}")
    print(f"onnxruntime / pytorch: {res['onnxruntime']/res['pytorch']:.2f}x; max |p_onnx - p_torch| {diff:.1e} "
          f"on {a.bs * a.batches} random inputs")
    print(json.dumps(dict(arch=a.arch, size=a.size, bs=a.bs, threads=a.threads, images_per_s=res, max_abs_diff_probs=diff)))


if __name__ == '__main__': main()
