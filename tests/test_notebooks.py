"""Papermill runs of the experiment notebooks and the demo, with tiny parameters.

`nbdev-test` already runs every notebook with its defaults, so these never repeat a default run; they add the runs
a user makes: tiny synthetic runs with the artnb recipe and 2-fold cross-validation (the paths the defaults do not
take), the paper-faithful parameter files with tiny overrides on a generic folder-per-class dataset of real
photographs (crops of the two photos scikit-learn ships), and bad parameters. Each run must write a metrics.json
that follows the shared schema with values in range, with the probe beside the paper's recipe.

Every kernel gets the test's own temp folder (`$TMPDIR`, so the scratch root `<tmp>/artnb-work` and the synthetic
cache are the test's, never shared with another artnb job on the machine). The runs that must stop at check_params
share one warm kernel, emptied before each run (`WarmKernel`)."""
import json, math, os
from pathlib import Path
import numpy as np
import pytest

papermill = pytest.importorskip("papermill")
from artnb.analysis import validate_metrics

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
EXPERIMENTS = ["03_monet", "04_ai_vs_human", "05_artists", "06_backbones", "07_artbench"]
ALL = EXPERIMENTS + ["08_demo"]
# The smallest run that still exercises every cell of each notebook.
TINY = dict(img_size=32, epochs=1, n_per_class=6, bs=16, progress=False)
# Paper grids shrunk for the tiny run (the yaml keeps the paper's full grid). 03: three synthetic painters (the target,
# the second target, one more) and two fused members, not six and four: every stage still runs (the photo folder has two
# classes anyway, and `painters` only shapes the synthetic default).
SHRINK = {"03_monet": lambda p: dict(fusion_epochs=1, n_boot=100, fusion_max_artists=2,
                                     painters=["Synth Monet", "Synth Van Gogh", "Synth Seurat"]),
          "05_artists": lambda p: dict(dense_grid=p["dense_grid"][:2], train_sizes=[32, 40], vote_sizes=[32, 40], n_boot=100)}

def present(names): return [n for n in names if (NBS / f"{n}.ipynb").exists()]

def _numbers(d, key=""):
    if isinstance(d, dict):
        for k, v in d.items(): yield from _numbers(v, k)
    elif isinstance(d, (list, tuple)):
        for v in d: yield from _numbers(v, key)
    elif isinstance(d, (int, float)) and not isinstance(d, bool): yield key, d

RATE_KEYS = ("acc", "accuracy", "f1", "precision", "recall", "auc", "ap", "top", "ece", "rate", "frac", "share")

def probe_accuracy(results):
    "The probe's accuracy (fold mean under CV) from results.probe"
    acc = results["probe"]["metrics"]["accuracy"]
    return acc["mean"] if isinstance(acc, dict) else acc

def _close(a, b, tol=1e-6): return a is not None and b is not None and abs(float(a) - float(b)) <= tol

def _is_share(v, n):
    "v is a share of n items (a multiple of 1/n)"
    return n > 0 and abs(v * n - round(v * n)) < 1e-6

def _check_03(res, kind):
    "S0: the target model's metrics agree with its confusion matrix; the AI collapse and the repair are both measured"
    tm, head = res.get("target_model"), res["headline"]
    if tm:
        cm, classes = np.array(tm["confusion"]["cells"]), tm["confusion"]["classes"]
        assert cm.sum() == tm["n_eval"] > 0
        assert _close(tm["accuracy"], np.trace(cm) / cm.sum()), (tm["accuracy"], cm.tolist())
        t = classes.index(res["target"])   # precision / recall / f1 are the TARGET's, not the "other" class's
        if cm[t].sum(): assert _close(tm["recall"], cm[t, t] / cm[t].sum()), (tm["recall"], cm.tolist())
        if cm[:, t].sum(): assert _close(tm["precision"], cm[t, t] / cm[:, t].sum()), (tm["precision"], cm.tolist())
        assert _close(head["test accuracy"], tm["accuracy"])
    ai = res.get("ai_imitation") or {}
    if kind == "synthetic":   # the synthetic default has AI imitations of the target: collapse and repair must be measured
        assert res["target"] == "Synth Monet" and tm is not None
        for k in ("rejected_rate_before", "rejected_rate_after"):
            assert k in ai and _is_share(ai[k], ai["n_test_target"]), (k, ai)
        assert _close(head["AI imitations rejected rate"], ai["rejected_rate_before"])
        assert _close(head["AI imitations rejected rate, retrained with AI negatives"], ai["rejected_rate_after"])
        assert ai["n_train_ai_negatives"] > 0
    if res.get("second_model"): assert _close(head["van gogh test accuracy"], res["second_model"]["accuracy"])

def _check_04(res, kind):
    "S1: per-source accuracy and share called AI agree with each source's class; the shortcut drop is D3 minus D3a"
    truth, roles, sc = res["sources"], res["roles"], res["shortcut"]
    for name, r in res["recipes"].items():
        if "per_source" not in r: continue
        ps = r["per_source"]
        assert _close(r["mean_source_acc"], np.mean([v["acc"] for v in ps.values()])), name
        for s, v in ps.items():
            assert v["n"] > 0 and _is_share(v["acc"], v["n"]), (name, s, v)
            if res["ai_mode"]:   # an AI image is right iff called AI, a human one iff not
                assert _close(v["acc"], v["called_ai_share"] if truth[s] == "AI" else 1 - v["called_ai_share"]), (name, s, v)
    if not res["ai_mode"]:
        assert sc == {} and "all" in res["recipes"]; return
    for n in ("D3", "D3a"):
        k = f"wga_called_ai_rate_{n}"
        if k in sc: assert _close(sc[k], res["recipes"][n]["per_source"][roles["wga"]]["called_ai_share"])
        if k in res["headline"]: assert _close(res["headline"][k], sc[k])
    if kind == "synthetic":
        assert {"wga_called_ai_rate_D3", "wga_called_ai_rate_D3a", "wga_shortcut_drop_D3_to_D3a"} <= set(sc), sc
    if "wga_shortcut_drop_D3_to_D3a" in sc:   # positive = noise + blur reduced the shortcut
        assert _close(sc["wga_shortcut_drop_D3_to_D3a"], sc["wga_called_ai_rate_D3"] - sc["wga_called_ai_rate_D3a"])

def _check_05(res, kind):
    "S2: top-2 accuracy is never below top-1; with two classes it is 1"
    n_classes = res["data"]["n_classes"]
    assert n_classes == len(res["data"]["classes"]) >= 2
    for name, t in res["head_comparison"].items():
        assert t["top2_accuracy"] >= t["accuracy"] - 1e-9, (name, t)
        if n_classes == 2: assert _close(t["top2_accuracy"], 1.0), (name, t)
    h = res["headline"]
    for H in ("GAP", "SPP"):
        if h.get(f"{H} top-1 acc") is not None: assert h[f"{H} top-2 acc"] >= h[f"{H} top-1 acc"] - 1e-9

def _check_06(res, kind):
    "S3: headline numbers are those of the runs they name; the best model is the best by the task's validation metric (macro-F1 / balanced accuracy)"
    h, runs, names = res["headline"], res["runs"], res["headline_models"]
    assert [k for k, _ in res["headline_n"]] == list(h)
    assert _close(h["probe accuracy"], probe_accuracy(res))
    if names["baseline"]:
        assert _close(h["baseline accuracy"], runs[names["baseline"]]["metrics"]["accuracy"])
        assert "head-only" in runs[names["baseline"]]["mode"]
    if names["best_fine_tuned"]: assert _close(h["best fine-tuned accuracy"], runs[names["best_fine_tuned"]]["metrics"]["accuracy"])
    best = res["best_model"]
    assert best["name"] in runs and _close(best["valid_score"], max(r["valid_score"] for r in runs.values()))
    assert best["selected_by"] in ("valid macro_f1", "valid balanced_accuracy")

def _check_07(res, kind):
    "S4: the origin/style error split partitions the test set and agrees with each variant's test accuracy"
    if kind == "synthetic": assert res["task"] == "style_origin"
    for v, r in res["variants"].items():
        if f"{v} test accuracy" in res["headline"]: assert _close(res["headline"][f"{v} test accuracy"], r["test_accuracy"])
        e = r.get("error_split")
        if res["task"] == "style_origin": assert e is not None, v
        if not e: continue
        parts = ("correct_rate", "style_wrong_origin_right_rate", "origin_wrong_style_right_rate", "both_wrong_rate")
        assert _close(sum(e[k] for k in parts), 1.0), e
        assert _close(e["correct_rate"], r["test_accuracy"]), (v, e, r["test_accuracy"])
        assert _close(e["origin_accuracy"], e["correct_rate"] + e["style_wrong_origin_right_rate"]), e
        assert _close(e["style_accuracy"], e["correct_rate"] + e["origin_wrong_style_right_rate"]), e

NOTEBOOK_CHECKS = {"03_monet": _check_03, "04_ai_vs_human": _check_04, "05_artists": _check_05,
                   "06_backbones": _check_06, "07_artbench": _check_07}

def check_metrics(out_dir, kind, recipe=None, cv_folds=None, nb=None):
    p = Path(out_dir) / "metrics.json"
    assert p.exists(), f"{p} was not written"
    m = json.loads(p.read_text())
    validate_metrics(m)
    assert m["data"]["kind"] == kind
    assert m["results"], "results are empty"
    if recipe is not None:   # an experiment notebook: the probe stands beside every result
        res = m["results"]
        assert res["recipe"] == recipe
        assert 0 <= probe_accuracy(res) <= 1
        if recipe == "artnb": assert "artnb" in res and res["artnb"]["recipe"] == "artnb"
        if cv_folds:
            assert res["probe"]["cv_folds"] == cv_folds
            assert len(res["probe"]["metrics"]["accuracy"]["folds"]) == cv_folds
            assert res["probe"]["n"] >= cv_folds
    n_rates = 0
    for k, v in _numbers(m["results"]):
        assert math.isfinite(v), f"{k} = {v}"
        if any(r in k.lower() for r in RATE_KEYS) and not k.lower().endswith(("_n", "count", "epochs")):
            n_rates += 1
            assert -1e-9 <= v <= 1 + 1e-9, f"{k} = {v} is not a rate in [0, 1]"
    assert n_rates > 0, "metrics.json holds no rate-like metric"
    assert list(Path(out_dir).glob("*.png")), "no figure was written"
    if nb in NOTEBOOK_CHECKS: NOTEBOOK_CHECKS[nb](m["results"], kind)   # values a wrong run would get wrong
    return m

def scratch_root(tmp_path):
    "The test's own temp folder for the notebook's kernel (`$TMPDIR`: the scratch root `<tmp>/artnb-work` and the synthetic-data cache lie under it), so no other artnb job on the machine shares it"
    d = tmp_path / "tmp"
    d.mkdir(exist_ok=True)
    return d

def run(nb, out_dir, tmp_path, kernel=None, **params):
    "papermill `nb` with `params` in a fresh kernel whose temp folder is `scratch_root(tmp_path)`, or in the `warm_kernel` given"
    tmp = scratch_root(tmp_path)
    kw = dict(parameters=dict(out_dir=str(out_dir), **params), cwd=str(NBS), kernel_name="python3", progress_bar=False)
    if kernel is not None:
        kernel.fresh(tmp)
        kw["km"] = kernel.km
    old = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(tmp)     # a fresh kernel inherits it; this process keeps its cached tempfile.tempdir
    try: papermill.execute_notebook(str(NBS / f"{nb}.ipynb"), str(tmp_path / f"{nb}.out.ipynb"), **kw)
    finally:
        if old is None: os.environ.pop("TMPDIR", None)
        else: os.environ["TMPDIR"] = old

@pytest.mark.parametrize("nb", present(EXPERIMENTS))
def test_tiny_synthetic_artnb_recipe_cv(nb, tmp_path):
    "The artnb recipe and 2-fold CV of the main comparison, on tiny synthetic data"
    import yaml
    out = tmp_path / "out"
    params = dict(TINY, recipe="artnb", cv_folds=2)
    if nb in SHRINK:
        paper = yaml.safe_load((NBS / "params" / f"{nb}.paper.yaml").read_text())
        params.update(SHRINK[nb](paper))
    run(nb, out, tmp_path, **params)
    check_metrics(out, "synthetic", recipe="artnb", cv_folds=2, nb=nb)

def test_tiny_demo(tmp_path):
    if "08_demo" not in present(["08_demo"]): pytest.skip("08_demo is not in nbs/")
    out = tmp_path / "out"
    run("08_demo", out, tmp_path, **TINY)
    check_metrics(out, "synthetic")

@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    "A generic folder-per-class dataset of real photographs: 64 px crops of sklearn's sample photos."
    from sklearn.datasets import load_sample_images
    from PIL import Image
    root = tmp_path_factory.mktemp("photos")
    data = load_sample_images()
    rng = np.random.default_rng(0)
    for name, img in zip(data.filenames, data.images):
        cls = Path(name).stem
        (root / cls).mkdir()
        h, w, _ = img.shape
        for i in range(14):
            s = int(rng.integers(96, 200)); y = int(rng.integers(0, h - s)); x = int(rng.integers(0, w - s))
            Image.fromarray(img[y:y+s, x:x+s]).save(root / cls / f"{cls}_{i}.jpg", quality=90)
    return root

@pytest.mark.parametrize("nb", present(EXPERIMENTS))
def test_paper_params_on_real_photos(nb, tmp_path, photo_folder):
    "The paper-faithful parameter file, shrunk (offline, tiny images, one epoch), on a generic folder of real photos"
    import yaml
    pfile = NBS / "params" / f"{nb}.paper.yaml"
    assert pfile.exists(), f"missing {pfile}"
    params = yaml.safe_load(pfile.read_text())
    assert "data_path" not in params, "a paper yaml must not fix data_path"
    params.update(TINY, pretrained=False, data_path=str(photo_folder))
    if nb in SHRINK: params.update(SHRINK[nb](params))
    if nb == "06_backbones": params["save_model_dir"] = str(tmp_path / "model")
    out = tmp_path / "out"
    run(nb, out, tmp_path, **params)
    m = check_metrics(out, "real", recipe="paper", nb=nb)
    if nb == "06_backbones": _check_saved_model(tmp_path / "model", m["results"]["best_model"])

def _check_saved_model(model, best):
    "A model a notebook saved carries its card, temperature and threshold, and artnb-eval on its test split reproduces the notebook's accuracy exactly"
    from artnb.inference import load_model
    from artnb.evaluate import evaluate_model
    assert {"README.md", "config.json", "model.safetensors", "items.csv", "predictions.csv"} <= {p.name for p in model.iterdir()}
    cfg = json.loads((model / "config.json").read_text())
    assert cfg["temperature"] == best["calibration"]["temperature"] and cfg["threshold"] == best["calibration"]["threshold"]
    assert cfg["data_kind"] == "real" and "test" in json.dumps(cfg["metrics"])
    card = (model / "README.md").read_text()
    assert card.startswith("---") and "temperature" in card
    assert load_model(model).temperature == best["calibration"]["temperature"]
    r = evaluate_model(model, model / "items.csv", out=model.parent / "eval", split="test", n_boot=50)
    assert r["accuracy"] == best["test_accuracy"], (r["accuracy"], best["test_accuracy"])

def test_csv_dataset_with_bad_files(tmp_path, photo_folder):
    """A generic CSV dataset (a file with path,label columns, absolute paths) through an experiment notebook's defaults,
    with broken and odd files among the real photos it lists: the run finishes, and metrics.json lists each skipped file
    with its reason. (One run for both: each run of 06 pays a kernel start and the imports.)"""
    import shutil
    from artnb.synth_data import write_bad_files
    nb = "06_backbones"
    if nb not in present([nb]): pytest.skip(f"{nb} is not in nbs/")
    root = tmp_path / "photos"
    shutil.copytree(photo_folder, root)
    cls = sorted(p.name for p in root.iterdir() if p.is_dir())[0]
    files = write_bad_files(root / cls)          # CMYK, 16-bit, RGBA, palette, EXIF-rotated ... and broken ones
    broken = {"truncated_jpeg", "text_jpg", "empty_jpg", "tiny_png", "bomb_png"} & set(files)
    assert broken, "write_bad_files wrote no broken file"
    listed = sorted(p for p in root.rglob("*") if p.is_file())
    assert len(listed) == sum(1 for _ in photo_folder.rglob("*.jpg")) + len(files)
    csv = root / "photos.csv"                     # beside the class folders: skipped files are named relative to it
    csv.write_text("path,label\n" + "".join(f"{p},{p.parent.name}\n" for p in listed))
    out = tmp_path / "out"
    run(nb, out, tmp_path, **TINY, pretrained=False, data_path=str(csv))
    m = check_metrics(out, "real")
    data = m["data"]
    assert data["path"] and Path(data["path"]).name == "photos.csv"
    assert data["n_bad"] == len(broken), data["bad_files"]
    assert {b["file"] for b in data["bad_files"]} == {f"{cls}/{Path(files[k]).name}" for k in broken}
    assert all(b["reason"] for b in data["bad_files"]) and sum(data["bad_reasons"].values()) == len(broken)
    n_photos = sum(1 for _ in photo_folder.rglob("*.jpg"))
    assert data["n_images"] + data["n_leaks_removed"] == n_photos + len(files) - len(broken)


def test_help_notebook_lists_every_parameter_with_a_type():
    "papermill --help-notebook must see every annotated parameter of every experiment notebook, each with a type"
    import ast
    for nb in present(EXPERIMENTS + ["08_demo"]):
        info = papermill.inspect_notebook(str(NBS / f"{nb}.ipynb"))
        cell = next(c for c in json.loads((NBS / f"{nb}.ipynb").read_text())["cells"]
                    if "parameters" in c.get("metadata", {}).get("tags", []))
        names = [n.target.id for n in ast.parse("".join(cell["source"])).body if isinstance(n, ast.AnnAssign)]
        assert names, f"{nb}: no annotated parameters"
        assert sorted(info) == sorted(names), f"{nb}: papermill sees {sorted(set(names) - set(info))} missing"
        untyped = [k for k, v in info.items() if v["inferred_type_name"] in ("None", "", None)]
        assert not untyped, f"{nb}: parameters without a type: {untyped}"

class WarmKernel:
    """One python3 kernel (cwd nbs/) reused by the runs that must stop at check_params: they train nothing, so starting a
    kernel and importing torch + fastai again (~10 s) was most of each run. Before each run the kernel's namespace is
    emptied (`%reset -f`, then checked to hold no more public names than a new kernel's) and its temp folder set to the
    test's own."""
    def __init__(self):
        from jupyter_client.manager import KernelManager
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=str(NBS))
        self.names0 = self.execute("print(sorted(k for k in globals() if not k.startswith('_')))")   # IPython's own names

    def execute(self, code):
        "Run `code` in the kernel; its printed text. A new client each time: papermill's client (another event loop) leaves an older one deaf"
        kc = self.km.client(); kc.start_channels()
        try:
            kc.wait_for_ready(timeout=120)
            out = []
            r = kc.execute_interactive(code, timeout=60,
                                       output_hook=lambda m: out.append(m["content"]["text"]) if m["msg_type"] == "stream" else None)
            assert r["content"]["status"] == "ok", r["content"]
            return "".join(out).strip()
        finally: kc.stop_channels()

    def fresh(self, tmp):
        "Empty the namespace and make `tmp` the kernel's temp folder (`tempfile.gettempdir()` and `$TMPDIR`)"
        self.execute(f"%reset -f\nimport os as _os, tempfile as _tf\n_os.environ['TMPDIR'] = _tf.tempdir = {str(tmp)!r}\ndel _os, _tf")
        names = self.execute("print(sorted(k for k in globals() if not k.startswith('_')))")
        assert names == self.names0, f"the warm kernel's namespace is not as fresh as a new kernel's: {names}"

    def close(self): self.km.shutdown_kernel(now=True)

@pytest.fixture(scope="module")
def warm_kernel():
    k = WarmKernel()
    yield k
    k.close()

@pytest.mark.parametrize("bad, message", [({"img_size": 7}, "img_size=7: must be >= 32"),
                                          ({"epochs": 0}, "epochs=0: must be >= 1"),
                                          ({"models": "nope_net"}, "Unknown architecture 'nope_net'"),
                                          ({"ratios": "0.5,0.2"}, "sum to 1")])
def test_bad_parameters_fail_fast_and_write_nothing(bad, message, tmp_path, warm_kernel):
    "A bad parameter stops the notebook at check_params with one line, before any folder or figure is written (in the test's own scratch root)"
    work = scratch_root(tmp_path) / "artnb-work"
    before = set(work.glob("*")) if work.exists() else set()
    out = tmp_path / "out"
    with pytest.raises(papermill.PapermillExecutionError) as e:
        run("06_backbones", out, tmp_path, kernel=warm_kernel, **bad)
    assert message in str(e.value) and "ParamError" in str(e.value)
    assert not out.exists(), "a failed parameter check created the output folder"
    after = set(work.glob("*")) if work.exists() else set()
    assert after == before, f"scratch folders left behind: {after - before}"

def test_list_parameter_as_typed_on_the_command_line(tmp_path, warm_kernel):
    "-p models resnet50 arrives as a string; check_params makes it a one-item list (shown by the unknown-name error)"
    out = tmp_path / "out"
    with pytest.raises(papermill.PapermillExecutionError) as e:
        run("06_backbones", out, tmp_path, kernel=warm_kernel, models="tf_efficientnet_lite0,resnet5O")
    assert "Unknown architecture 'resnet5O'" in str(e.value) and "'r'" not in str(e.value)
