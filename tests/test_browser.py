"""The demo as a web app, in a real browser: `artnb-demo` (Voila) serving a tiny model, driven by headless Chromium
through Playwright. It uploads a painting and a broken file through the file chooser and checks what a visitor sees.

Needs the `chromium` browser (Debian package) and the `playwright` + `voila` Python packages; Playwright's own browser
download is not used. Where a piece is missing the test skips with a message naming it, unless the browser test is
mandatory (`ARTNB_BROWSER_TEST=required`, which `.ci/run` exports, or `CI=true`): then it fails.
`ARTNB_SCREENSHOT=path.png` also saves the page after the upload there (figures/08_demo/ holds the committed one)."""
import json, os, shutil, signal, socket, subprocess, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
REQUIRED = os.environ.get("ARTNB_BROWSER_TEST") == "required" or os.environ.get("CI") == "true"
PAINTERS = ["Synth Mondrian", "Synth Rothko", "Synth Hokusai"]


def missing_piece():
    "What the browser test lacks here, in words; None when nothing is missing."
    if shutil.which("chromium") is None: return "the chromium browser (Debian: apt-get install -y chromium)"
    for mod in ("playwright", "voila"):
        try: __import__(mod)
        except ImportError: return f"the Python package {mod} (pip install -r requirements.txt)"
    if not (BIN / "artnb-demo").exists(): return "the artnb-demo command (pip install -e .)"
    return None


@pytest.fixture(scope="module")
def browser_ready():
    why = missing_piece()
    if why and REQUIRED: pytest.fail(f"the browser test is mandatory here (CI), but {why} is missing")
    if why: pytest.skip(f"browser test skipped: {why} is missing")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, browser_ready):
    "A 3-painter resnet18 trained for a second on SYNTHETIC paintings, saved with save_model; plus a painting."
    import torch
    from artnb.synth_data import make_dataset
    from artnb.data import scan, split_items, art_dls
    from artnb.learner import art_learner
    from artnb.inference import save_model
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("browser")
    root = make_dataset("folder", tmp / "paintings", n_per_class=4, size=128, seed=0, painters=PAINTERS)
    items = split_items(scan(root), ratios=(0.7, 0.3), seed=0)
    learn = art_learner(art_dls(items, size=64, bs=8), "resnet18", pretrained=False)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, 1e-3)
    model = save_model(learn, tmp / "model")
    cfg = json.loads((model / "config.json").read_text())
    cfg["data_kind"] = "synthetic"     # what a saved config records once save_model writes it; the app must show it
    (model / "config.json").write_text(json.dumps(cfg, indent=2))
    painting = tmp / "painting.jpg"
    shutil.copy(items[items.split == "valid"].path.iloc[0], painting)
    broken = tmp / "notes.jpg"
    broken.write_text("a shopping list, not a painting")
    return dict(model=model, painting=painting, broken=broken, classes=cfg["classes"])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


@pytest.fixture
def demo_server(tiny_model, tmp_path):
    "`artnb-demo --model-dir ... --port N` on 127.0.0.1; yields its URL; always killed (its whole process group)."
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([str(BIN / "artnb-demo"), "--model-dir", str(tiny_model["model"]), "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"artnb-demo exited with {proc.returncode}:\n{(tmp_path / 'server.log').read_text()[-3000:]}")
            try:                                   # listening is enough: a GET of / would run the app in a kernel
                with socket.create_connection(("127.0.0.1", port), timeout=2): break
            except OSError: pass
            if time.monotonic() > deadline:
                pytest.fail(f"artnb-demo did not answer within 90 s:\n{(tmp_path / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try: os.killpg(proc.pid, sig)
            except ProcessLookupError: break
            try: proc.wait(timeout=wait); break
            except subprocess.TimeoutExpired: pass
        log.close()


def test_demo_in_browser(tiny_model, demo_server, tmp_path):
    from playwright.sync_api import sync_playwright
    t0 = time.monotonic()
    shot = Path(os.environ.get("ARTNB_SCREENSHOT") or tmp_path / "demo_after_upload.png")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True, timeout=30_000)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 460})
            page.set_default_timeout(45_000)
            page.goto(demo_server, wait_until="commit", timeout=60_000)   # Voila streams the page while the kernel runs the app
            button = page.locator("button.artnb-upload")
            button.wait_for(state="visible", timeout=150_000)         # the kernel started (imports fastai) and rendered the app
            assert page.locator(".artnb-row").count() == 0           # the live app starts empty
            assert page.locator("select").first.input_value().endswith("model")   # the drop-down shows the model
            with page.expect_file_chooser(timeout=15_000) as fc:
                button.click()
            fc.value.set_files([str(tiny_model["painting"]), str(tiny_model["broken"])])

            row = page.locator(".artnb-row")
            row.wait_for(state="visible", timeout=90_000)
            assert row.count() == 1
            text = row.locator(".artnb-prediction").inner_text()
            assert "painting.jpg" in text and "prediction:" in text, text
            predicted = text.split("prediction:")[1].split("(")[0].strip()
            assert predicted in tiny_model["classes"], (predicted, tiny_model["classes"])
            assert sum(c in text for c in tiny_model["classes"]) == 3, text      # the top-3 table
            assert "model trained on: SYNTHETIC DATA" in text, text
            for cls in ("artnb-original", "artnb-cam"):
                img = row.locator(f"img.{cls}")
                img.wait_for(state="visible", timeout=15_000)
                w = img.evaluate("el => el.complete ? el.naturalWidth : 0")
                assert w > 0, f"{cls} image did not load"
            refusal = page.locator(".artnb-refusal")
            refusal.wait_for(state="visible", timeout=15_000)
            assert "notes.jpg: not an image" in refusal.inner_text()
            assert "app_from_env" not in page.inner_text("body")          # no code cell shown
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    print(f"browser part took {time.monotonic() - t0:.1f} s")
