#!/usr/bin/env python
"""Training throughput of an artnb learner vs a plain PyTorch loop (same model, data, batch size, precision).

Both sides train the same `nn.Sequential(body, head)` built by `artnb.learner.build_model`, from the same
pre-decoded, pre-normalised image tensors held in memory (so image decoding is not measured), with the same
batch size and precision (fp32 on CPU; fp16 autocast + channels-last on a GPU, as `art_learner` does).
Only the training phase of each epoch is timed; the first epoch of each run is a warm-up. The three
variants run interleaved `--repeats` times; on a shared machine compare the median batch-to-batch time
(robust to other processes) as well as the best epoch.

    .venv/bin/python scripts/bench_learner.py --arch resnet18 --size 64 --n 320 --bs 32

Prints a table; asserts nothing.
"""
import argparse, copy, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F


def make_tensors(n, size, n_classes, seed=0):
    "Pre-decoded images: artnb.synth paintings when available, else random colour fields; normalised once."
    try:
        import tempfile
        from artnb.synth_data import make_dataset
        from artnb.data import scan
        from artnb.core import load_rgb
        root = make_dataset('best-artworks', tempfile.mkdtemp(), n_per_class=max(2, n // n_classes), size=size, seed=seed)
        items = scan(root)
        items = items[items.label.isin(sorted(items.label.unique())[:n_classes])].head(n)
        ims = [np.asarray(load_rgb(p).resize((size, size))) for p in items.path]
        codes = {l: i for i, l in enumerate(sorted(items.label.unique()))}
        y = torch.tensor([codes[l] for l in items.label])
        src = 'artnb.synth (SYNTHETIC)'
    except Exception as e:  # synth not available: random data is fine for throughput
        rng = np.random.default_rng(seed)
        ims = list(rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8))
        y = torch.tensor(rng.integers(0, n_classes, n))
        src = f'random pixels ({type(e).__name__})'
    x = torch.from_numpy(np.stack(ims)).permute(0, 3, 1, 2).float().div_(255.)
    x = (x - 0.45) / 0.225
    return x, y, src


def plain_loop(model, x, y, bs, epochs, lr, device, amp, opt_name):
    model = model.to(device).train()
    if amp: model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=lr) if opt_name == 'torch-adam' else None
    scaler = torch.amp.GradScaler('cuda') if amp else None
    times, stamps = [], []
    g = torch.Generator().manual_seed(0)
    for ep in range(epochs):
        idx = torch.randperm(len(x), generator=g)
        n_batches = len(x) // bs
        if device.type == 'cuda': torch.cuda.synchronize()
        t0 = time.perf_counter()
        st = []
        for b in range(n_batches):
            st.append(time.perf_counter())
            i = idx[b*bs:(b+1)*bs]
            xb, yb = x[i].to(device, non_blocking=True), y[i].to(device, non_blocking=True)
            if amp: xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            if amp: scaler.scale(loss).backward(); scaler.step(opt); scaler.update()
            else: loss.backward(); opt.step()
        if device.type == 'cuda': torch.cuda.synchronize()
        times.append((time.perf_counter() - t0, n_batches * bs)); stamps.append(st + [time.perf_counter()])
    return times, stamps


def artnb_run(model, x, y, bs, epochs, lr, device, opt_name, n_classes):
    from fastai.vision.all import DataLoaders, Callback
    from fastai.data.load import DataLoader
    from artnb.learner import art_learner
    import artnb.learner as al

    class TrainTimer(Callback):
        order = 99
        def before_fit(self): self.times, self.stamps = [], []
        def before_train(self):
            if self.dls.device.type == 'cuda': torch.cuda.synchronize()
            self.t0, self.n, self.st = time.perf_counter(), 0, []
        def before_batch(self):
            if self.training: self.st.append(time.perf_counter())
        def after_batch(self):
            if self.training: self.n += len(self.yb[0])
        def after_train(self):
            if self.dls.device.type == 'cuda': torch.cuda.synchronize()
            self.times.append((time.perf_counter() - self.t0, self.n)); self.stamps.append(self.st + [time.perf_counter()])

    ds = list(zip(x, y))
    tdl = DataLoader(ds, bs=bs, shuffle=True, drop_last=True, device=device)
    vdl = DataLoader(ds[:bs], bs=bs, device=device)
    dls = DataLoaders(tdl, vdl, device=device)
    dls.c, dls.vocab = n_classes, [str(i) for i in range(n_classes)]
    orig = al.build_model
    al.build_model = lambda *a, **k: model  # the very same network the plain loop trains
    try:
        opt = 'fastai-adam' if opt_name == 'fastai-adam' else 'adam'   # artnb 'adam' = torch.optim.Adam in OptimWrapper
        learn = art_learner(dls, 'resnet18', head='gap', pretrained=False, opt=opt, lr=lr, metrics=[], freeze=False,
                            loss_func=nn.CrossEntropyLoss())
    finally:
        al.build_model = orig
    timer = TrainTimer()
    with learn.no_bar(), learn.no_logging():
        learn.fit(epochs, lr, cbs=timer)
    return timer.times, timer.stamps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--arch', default='resnet18'); ap.add_argument('--size', type=int, default=64)
    ap.add_argument('--n', type=int, default=320); ap.add_argument('--bs', type=int, default=32)
    ap.add_argument('--epochs', type=int, default=2); ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--classes', type=int, default=8); ap.add_argument('--lr', type=float, default=1e-3)
    a = ap.parse_args()
    from artnb.learner import build_model
    from fastai.torch_core import default_device
    device = default_device()
    amp = device.type == 'cuda'
    x, y, src = make_tensors(a.n, a.size, a.classes)
    base = build_model(a.arch, 'gap', a.classes, a.size, pretrained=False)
    print(f"data: {len(x)} images {a.size}px from {src}; {a.arch} + gap head; bs {a.bs}; device {device}; "
          f"precision {'fp16 autocast + channels_last' if amp else 'fp32'}; torch threads {torch.get_num_threads()}")
    res, gaps = {}, {}
    for r in range(a.repeats):  # interleave short runs: the machine is shared, so compare robust statistics
        for name, fn in [('plain torch loop (torch Adam)', lambda m: plain_loop(m, x, y, a.bs, a.epochs, a.lr, device, amp, 'torch-adam')),
                         ('artnb learner (default opt: torch Adam)', lambda m: artnb_run(m, x, y, a.bs, a.epochs, a.lr, device, 'torch-adam', a.classes)),
                         ('artnb learner (opt="fastai-adam")', lambda m: artnb_run(m, x, y, a.bs, a.epochs, a.lr, device, 'fastai-adam', a.classes))]:
            torch.manual_seed(0)
            times, stamps = fn(copy.deepcopy(base))
            times, stamps = times[1:], stamps[1:]  # drop the warm-up epoch
            res.setdefault(name, []).append(sum(n for _, n in times) / sum(t for t, _ in times))
            gaps.setdefault(name, []).extend(float(d) for st in stamps for d in np.diff(st))  # batch start to batch start
    ref_best, ref_med = max(res['plain torch loop (torch Adam)']), a.bs / np.median(gaps['plain torch loop (torch Adam)'])
    print(f"{'run':42s} {'img/s best epoch':>16s} {'img/s median batch':>19s} {'vs plain (best, median)':>24s}   all epochs")
    for k, v in res.items():
        med = a.bs / np.median(gaps[k])
        print(f"{k:42s} {max(v):16.1f} {med:19.1f} {max(v)/ref_best:11.2f}x {med/ref_med:10.2f}x   {', '.join(f'{o:.1f}' for o in v)}")


if __name__ == '__main__':
    main()
