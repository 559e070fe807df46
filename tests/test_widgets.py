"""The demo's self-checks (they used to run inside nbs/08_demo.ipynb, on the widget the user then saw): the app
(`artnb.demo_app.DemoApp`) with a tiny saved model on SYNTHETIC paintings, driven headless the way a browser does
(setting the FileUpload widget's value), with paintings and the files it must refuse."""
import datetime, html, io, json, os, pickle, re, shutil, struct, zlib
from pathlib import Path
import numpy as np, pytest, torch
from PIL import Image

from artnb.synth_data import write_bad_files
from artnb.data import scan, split_items, art_dls
from artnb.learner import art_learner
from artnb.inference import save_model
from artnb.core import load_rgb
from artnb.widgets import read_upload
from artnb.demo_app import DemoApp, app_from_env, app_env, open_model, model_folder, card_title

@pytest.fixture(scope="module")
def setup(tmp_path_factory, synth):
    "Two tiny saved resnet18s on the suite's shared dataset (tests/conftest.py: 3 synthetic painters; the first saved as of unknown origin, the second with the kind art_dls recorded) and test paintings."
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("widgets")
    items = synth.items
    learn = art_learner(art_dls(items, size=64, bs=8), "resnet18", pretrained=False)
    a = save_model(learn, tmp / "models" / "a", data_kind="unknown")
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)           # b: other weights, so other answers
    b = save_model(learn, tmp / "models" / "b")
    assert json.loads((b / "config.json").read_text())["data_kind"] == "synthetic"   # recorded from the items' synthetic flag
    valid = items[items.split == "valid"].drop_duplicates("label")
    return dict(tmp=tmp, a=a, b=b, paintings=[Path(p) for p in valid.path], classes=synth.classes)


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
    assert card_title(setup["b"]) in app.heading.value and "SYNTHETIC DATA" in app.heading.value   # the heading follows
    assert "(S3 demo)" not in app.heading.value


def test_pickles_refused_and_env(setup):
    d = setup["tmp"] / "export"; d.mkdir(exist_ok=True)
    (d / "export.pkl").write_bytes(pickle.dumps({"stands in for": "a fastai Learner"}))
    for target in (d, d / "export.pkl"):
        with pytest.raises(ValueError) as e: open_model(target)
        assert "pickle" in str(e.value) and "save_model" in str(e.value)
    app = app_from_env(app_env([setup["a"], setup["b"]], setup["tmp"] / "models"))
    assert app.model_paths == [model_folder(setup["a"]), model_folder(setup["b"])]


# ---- the demo and Predictor read an image the same way, and the headline says what the decision rule says
def _png(im, **kw):
    b = io.BytesIO(); im.save(b, format="PNG", **kw); return b.getvalue()


def odd_images():
    "name -> bytes of images whose decoding matters: 16-bit, alpha (transparent and half-transparent), palette + tRNS, EXIF-rotated JPEG."
    from artnb.core import sample_image
    w, h = 64, 48
    g16 = Image.fromarray(np.linspace(0, 65535, w * h).reshape(h, w).astype(np.uint16))   # a gradient; PIL's convert clips it white
    assert g16.mode == "I;16"
    rgba = Image.new("RGBA", (w, h), (0, 0, 0, 0))                                         # black under alpha 0: white when composited
    rgba.paste(sample_image(1, (w, h)).convert("RGBA"), (0, 0))
    a = np.full((h, w), 255, np.uint8); a[:, : w // 3] = 0; a[:, w // 3: 2 * w // 3] = 128
    rgba.putalpha(Image.fromarray(a))
    pal = sample_image(2, (w, h)).quantize(16)
    assert pal.mode == "P"
    jpg = io.BytesIO(); exif = Image.Exif(); exif[0x0112] = 6                               # orientation: rotate 90 degrees
    sample_image(3, (w, h)).save(jpg, format="JPEG", exif=exif.tobytes())
    return {"g16.png": _png(g16), "rgba.png": _png(rgba), "palette.png": _png(pal, transparency=0),
            "rotated.jpg": jpg.getvalue()}


@pytest.fixture(scope="module")
def tiny(multi_model, binary_model, tmp_path_factory):
    "The suite's shared saved models (tests/conftest.py: simple_cnns on 3 synthetic painters; Synth Rothko vs other), and the odd images written as files."
    tmp = tmp_path_factory.mktemp("parity")
    files = {}
    for name, data in odd_images().items():
        (tmp / name).write_bytes(data); files[name] = tmp / name
    return dict(tmp=tmp, multi=multi_model[1], binary=binary_model[2], files=files)


def store_rule(folder, threshold, kind):
    "Store a decision rule in a saved model's config.json (as calibrate + save_model would)."
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(threshold=threshold, threshold_kind=kind)
    (folder / "config.json").write_text(json.dumps(cfg))


def test_upload_and_file_give_same_probabilities(tiny):
    files = tiny["files"]
    assert Image.open(files["g16.png"]).mode in ("I;16", "I") and Image.open(files["palette.png"]).info.get("transparency") == 0
    app = DemoApp([tiny["multi"]])
    res = {r["name"]: r for r in app.upload([(n, p.read_bytes()) for n, p in files.items()])}
    pred = open_model(tiny["multi"])
    for name, path in files.items():
        r, want = res[name], pred.predict(path)
        assert r["ok"], r["error"]
        w, h = Image.open(path).size
        assert r["image"].size == ((h, w) if name == "rotated.jpg" else (w, h)), name   # EXIF rotation applied
        np.testing.assert_allclose(r["probs"], want.probs[0], atol=1e-6, err_msg=name)
        assert r["pred"] == want.labels[0], name
        np.testing.assert_array_equal(np.asarray(read_upload(name, path.read_bytes())), np.asarray(load_rgb(path)))
    # the test has teeth: PIL's own decoding (what the demo did) gives other pixels for these files
    for name in ("g16.png", "rgba.png", "palette.png"):
        old = np.asarray(Image.open(files[name]).convert("RGB"))
        assert np.abs(old.astype(int) - np.asarray(load_rgb(files[name]), dtype=int)).max() > 50, name


def _shown(row_html):
    "(headline label, headline percentage, {class: percentage} of the table) of a rendered prediction row."
    m = re.search(r'class="artnb-headline">prediction: <b>(.*?)</b> \((?:top class .*?: )?([\d.]+)%\)', row_html)
    table = {c: float(p) for c, p in re.findall(r"<tr><td>(.*?)</td><td>([\d.]+)%</td></tr>", row_html)}
    return html.unescape(m.group(1)), float(m.group(2)), table


def test_headline_follows_the_stored_binary_rule(tiny, tmp_path):
    folder = tmp_path / "binary"; shutil.copytree(tiny["binary"], folder)
    path = tiny["files"]["rgba.png"]
    p0 = open_model(folder)
    probs = p0.predict(path).probs[0]; pos = p0.pos_index
    q = float(probs[pos])
    t = min(q + 0.01, 1.0) if q >= 0.5 else max(q - 0.01, 0.0)   # a stored threshold that overturns the argmax
    store_rule(folder, t, "binary")
    pred = open_model(folder)
    assert pred.threshold == pytest.approx(t) and pred.threshold_kind == "binary"
    want = pred.predict(path)
    assert want.labels[0] != pred.classes[int(want.probs[0].argmax())]      # the case of the issue: rule != argmax
    app = DemoApp([folder])
    r = app.upload([("painting.png", path.read_bytes())])[0]
    assert r["pred"] == want.labels[0] == pred.labels_for(want.probs)[0]
    np.testing.assert_allclose(r["probs"], want.probs[0], atol=1e-6)
    assert r["prob"] == pytest.approx(float(want.probs[0][pred.classes.index(r["pred"])]))
    label, pct, table = _shown(app.viewer.out.children[0].children[-1].value)
    assert label == want.labels[0] and pct == table[label]
    assert "decision rule:" in app.viewer.out.children[0].children[-1].value


def test_headline_says_none_of_these_below_the_reject_threshold(tiny, tmp_path):
    folder = tmp_path / "multi"; shutil.copytree(tiny["multi"], folder)
    store_rule(folder, 1.0, "reject")                                       # nothing is sure enough: every image rejected
    path = tiny["files"]["palette.png"]
    want = open_model(folder).predict(path)
    assert want.labels == ["none of these"]
    app = DemoApp([folder])
    r = app.upload([("p.png", path.read_bytes())])[0]
    assert r["pred"] == "none of these"
    label, pct, table = _shown(app.viewer.out.children[0].children[-1].value)
    top = r["topk"][0][0]
    assert label == "none of these" and pct == table[top] and top == open_model(folder).classes[int(want.probs[0].argmax())]
