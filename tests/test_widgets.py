"""The demo's self-checks (they used to run inside nbs/08_demo.ipynb, on the widget the user then saw): the app
(`artnb.demo_app.DemoApp`) with a tiny saved model on SYNTHETIC paintings, driven headless the way a browser does
(setting the FileUpload widget's value), with paintings and the files it must refuse."""
import datetime, io, json, os, pickle, struct, zlib
from pathlib import Path
import numpy as np, pytest, torch
from PIL import Image

from artnb.synth_data import make_dataset, write_bad_files
from artnb.data import scan, split_items, art_dls
from artnb.learner import art_learner
from artnb.inference import save_model
from artnb.widgets import read_upload
from artnb.demo_app import DemoApp, app_from_env, app_env, open_model, model_folder

PAINTERS = ["Synth Mondrian", "Synth Rothko", "Synth Hokusai", "Synth Monet"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    "Two tiny saved models (4 synthetic painters; the first saved as of unknown origin, the second with the kind art_dls recorded) and test paintings."
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("widgets")
    root = make_dataset("folder", tmp / "paintings", n_per_class=4, size=64, seed=0, painters=PAINTERS)
    items = split_items(scan(root), ratios=(0.5, 0.5), seed=0)
    learn = art_learner(art_dls(items, size=64, bs=8), "resnet18", pretrained=False)
    a = save_model(learn, tmp / "models" / "a", data_kind="unknown")
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)           # b: other weights, so other answers
    b = save_model(learn, tmp / "models" / "b")
    assert json.loads((b / "config.json").read_text())["data_kind"] == "synthetic"   # recorded from the items' synthetic flag
    valid = items[items.split == "valid"].drop_duplicates("label")
    return dict(tmp=tmp, a=a, b=b, paintings=[Path(p) for p in valid.path], classes=sorted(PAINTERS))


def png_claiming(w, h):
    "A tiny PNG whose header (IHDR, valid CRCs) claims w x h pixels."
    chunk = lambda k, data: struct.pack(">I", len(data)) + k + data + struct.pack(">I", zlib.crc32(k + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def bad_files(tmp):
    "name -> (bytes, words the refusal message must contain): the six files the demo used to push at itself."
    bad = write_bad_files(tmp / "bad")
    return {"notes.jpg": (bad["text_jpg"].read_bytes(), "not an image"),
            "empty.jpg": (bad["empty_jpg"].read_bytes(), "empty file"),
            "truncated.jpg": (bad["truncated_jpeg"].read_bytes(), "truncated"),
            "claims_8000x8000.png": (png_claiming(8000, 8000), "image too large"),
            "bomb_100000x100000.png": (bad["bomb_png"].read_bytes(), "decompression bomb"),
            "export.pkl": (pickle.dumps({"stands in for": "a fastai Learner"}), "not an image")}


def as_upload_value(files):
    "What the browser puts into FileUpload.value (ipywidgets 8): one dict per file, bytes as a memoryview."
    now = datetime.datetime.now(datetime.timezone.utc)
    return tuple(dict(name=n, type="image/png" if n.endswith("png") else "image/jpeg", size=len(b), content=memoryview(b),
                      last_modified=now) for n, b in files)


def test_app_starts_empty(setup):
    app = DemoApp([setup["a"]])
    assert app.results == [] and app.viewer.messages == [] and app.viewer.out.children == ()
    assert app.viewer.msg.value == "" and app.viewer.upload.value == ()


def test_paintings_and_broken_files(setup):
    app = DemoApp([setup["a"]])
    good = [(p.name, p.read_bytes()) for p in setup["paintings"]]
    first = setup["paintings"][0]
    png = io.BytesIO(); read_upload(first.name, first.read_bytes()).save(png, format="PNG")
    good.append((first.stem + ".png", png.getvalue()))                   # the same painting as PNG bytes
    bad = bad_files(setup["tmp"])
    app.viewer.upload.value = as_upload_value(good + [(n, b) for n, (b, _) in bad.items()])
    res = {r["name"]: r for r in app.results}
    assert len(app.results) == len(good) + len(bad)
    for name, _ in good:
        r = res[name]
        assert r["ok"], f"{name} was refused: {r['error']}"
        assert r["pred"] in setup["classes"], r["pred"]
        ps = [p for _, p in r["topk"]]
        assert len(ps) == 3 and ps == sorted(ps, reverse=True) and all(0 <= p <= 1 for p in ps) and sum(ps) <= 1 + 1e-6
        assert abs(r["prob"] - ps[0]) < 1e-9 and r["topk"][0][0] == r["pred"]
        w, h = r["image"].size
        assert r["cam"].shape == (h, w)
        assert np.isfinite(r["cam"]).all() and r["cam"].min() >= 0 and r["cam"].max() <= 1
    assert res[first.name]["pred"] == res[first.stem + ".png"]["pred"]
    assert abs(res[first.name]["prob"] - res[first.stem + ".png"]["prob"]) < 1e-4   # the PNG holds the decoded JPEG
    for name, (_, words) in bad.items():
        r = res[name]
        assert not r["ok"] and "pred" not in r, name
        assert words in r["error"] and r["error"].startswith(name), (name, r["error"])
    assert len(app.viewer.messages) == len(bad)
    rows = app.viewer.out.children
    assert len(rows) == len(good)                                        # one row per accepted painting
    assert all(n in app.viewer.msg.value for n in bad)                   # every refusal is shown
    assert app.viewer.msg.value.count('class="artnb-refusal"') == len(bad)
    for row in rows:                                                      # original, CAM overlay, top-3 + data kind
        assert [c._dom_classes for c in row.children] == [("artnb-original",), ("artnb-cam",), ("artnb-prediction",)]
        assert "model trained on: <b>unknown</b>" in row.children[2].value  # a was saved as of unknown origin


def test_refuses_real_image_over_pixel_limit():
    b = io.BytesIO(); Image.new("RGB", (1200, 900), (120, 90, 60)).save(b, format="JPEG")
    with pytest.raises(ValueError, match="image too large"): read_upload("photo.jpg", b.getvalue(), max_pixels=1_000_000)
    assert read_upload("photo.jpg", b.getvalue()).size == (1200, 900)


def test_dropdown_switches_model_and_reanalyses(setup):
    app = DemoApp([setup["a"], setup["b"]], root=setup["tmp"] / "models")
    assert [o[0] for o in app.dropdown.options] == ["a", "b"]
    files = [(p.name, p.read_bytes()) for p in setup["paintings"]] + [("notes.txt", b"text")]
    app.viewer.upload.value = as_upload_value(files)
    before = [r.get("prob") for r in app.results]
    app.dropdown.value = str(setup["b"])
    assert app.pred.config.classes == setup["classes"] and len(app.results) == len(files)
    assert [r["ok"] for r in app.results] == [True] * len(setup["paintings"]) + [False]
    assert [r.get("prob") for r in app.results] != before                  # other weights, other probabilities
    assert app.viewer.trained_on == "synthetic"
    assert all("SYNTHETIC DATA" in row.children[2].value for row in app.viewer.out.children)


def test_pickles_refused_and_env(setup):
    d = setup["tmp"] / "export"; d.mkdir(exist_ok=True)
    (d / "export.pkl").write_bytes(pickle.dumps({"stands in for": "a fastai Learner"}))
    for target in (d, d / "export.pkl"):
        with pytest.raises(ValueError) as e: open_model(target)
        assert "pickle" in str(e.value) and "save_model" in str(e.value)
    app = app_from_env(app_env([setup["a"], setup["b"]], setup["tmp"] / "models"))
    assert app.model_paths == [model_folder(setup["a"]), model_folder(setup["b"])]
