"""The documentation site, in a real browser: `scripts/build_docs.sh` builds it (Sphinx + MyST-NB from the notebooks),
`python -m http.server` serves it on 127.0.0.1, and headless Chromium (Playwright) opens every page and checks what a
reader would hit: no console error, no failed or outside request (the site must work offline), every internal link
answers 200 (and its #fragment exists), every image loaded, and the search box finds an exported function.

`ARTNB_DOCS_SITE=DIR` checks an already built site in DIR instead of building one (`.ci/run` builds it once in its docs
step and sets `ARTNB_DOCS_DEFERRED=1` for the plain test run, which then skips this test). Needs the `chromium` browser
(Debian package), `playwright`, and Sphinx + MyST-NB + Furo (the dev extra); where one is missing the test skips with a
message naming it, unless the browser test is mandatory (`ARTNB_BROWSER_TEST=required` or `CI=true`): then it fails."""
import importlib.util, os, re, shutil, subprocess, sys, time
from pathlib import Path
from urllib.parse import urljoin, urldefrag, urlparse
import pytest

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = os.environ.get("ARTNB_BROWSER_TEST") == "required" or os.environ.get("CI") == "true"
_spec = importlib.util.spec_from_file_location("build_docs", ROOT / "scripts" / "build_docs.py")
build_docs = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(build_docs)   # the page order to expect

pytestmark = pytest.mark.skipif(os.environ.get("ARTNB_DOCS_DEFERRED") == "1" and not os.environ.get("ARTNB_DOCS_SITE"),
                                reason="the docs check runs in .ci/run's own docs step (ARTNB_DOCS_DEFERRED=1)")
CHROMIUM_ARGS = ["--disable-background-networking", "--disable-component-update", "--disable-default-apps",
                 "--disable-sync", "--no-first-run", "--disable-domain-reliability", "--metrics-recording-only"]


def missing_piece(build=True):
    "What the docs test lacks here, in words; None when nothing is missing."
    if shutil.which("chromium") is None: return "the chromium browser (Debian: apt-get install -y chromium)"
    for mod in ("playwright",) + (("sphinx", "myst_nb", "furo") if build else ()):
        try: __import__(mod)
        except ImportError: return f"the Python package {mod} (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    prebuilt = os.environ.get("ARTNB_DOCS_SITE")
    why = missing_piece(build=not prebuilt)
    if why and REQUIRED: pytest.fail(f"the docs browser test is mandatory here (CI), but {why} is missing")
    if why: pytest.skip(f"docs browser test skipped: {why} is missing")
    if prebuilt:
        out = Path(prebuilt)
        assert (out / "index.html").is_file(), f"ARTNB_DOCS_SITE={prebuilt} holds no index.html"
        return out
    out = tmp_path_factory.mktemp("docs") / "site"
    t0 = time.monotonic()
    r = subprocess.run(["bash", str(ROOT / "scripts" / "build_docs.sh"), str(out)], capture_output=True, text=True,
                       env={**os.environ, "PYTHON": sys.executable}, timeout=300)
    assert r.returncode == 0, f"build_docs.sh failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    print(f"docs built in {time.monotonic() - t0:.1f} s: {r.stdout.strip().splitlines()[-1]}")
    return out


@pytest.fixture(scope="module")
def server(site, tmp_path_factory):
    "`python -m http.server 0` on 127.0.0.1 serving the site; the port is read from its first line; always stopped."
    log = tmp_path_factory.mktemp("http") / "server.log"
    proc = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "-d", str(site)],
                            stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)
    try:
        line = proc.stdout.readline()                     # "Serving HTTP on 127.0.0.1 port 41235 (http://...) ..."
        m = re.search(r"port (\d+)", line)
        assert m, f"http.server said {line!r}; log: {log.read_text()[-2000:]}"
        yield f"http://127.0.0.1:{m.group(1)}/"
    finally:
        proc.terminate()
        try: proc.wait(timeout=10)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait()


def test_docs_site_in_browser(site, server):
    from playwright.sync_api import sync_playwright
    t0 = time.monotonic()
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                   if not p.relative_to(site).parts[0].startswith("_"))
    order = build_docs.notebook_order()
    stems = [n for _, ns in order for n in ns]
    missing = [n for n in stems if f"{n}.html" not in pages]
    assert not missing, f"notebooks without a page: {missing}"
    assert "index.html" in pages and "search.html" in pages

    problems, links, ids, imgs = [], {}, {}, 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS,
                                    timeout=30_000)
        try:
            ctx = browser.new_context(viewport={"width": 1280, "height": 800})
            outside = []

            def only_local(route):                       # the site must not need anything from outside
                if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"): route.continue_()
                else: outside.append(route.request.url); route.abort()
            ctx.route("**/*", only_local)
            page = ctx.new_page()
            page.set_default_timeout(30_000)
            current = {"url": ""}
            page.on("console", lambda m: m.type == "error" and problems.append(f"{current['url']}: console error: {m.text}"))
            page.on("pageerror", lambda e: problems.append(f"{current['url']}: page error: {e}"))
            page.on("requestfailed", lambda r: r.failure != "net::ERR_ABORTED"   # cut short by the next goto: not a defect
                    and problems.append(f"{current['url']}: request failed: {r.url} ({r.failure})"))
            page.on("response", lambda r: r.status >= 400 and problems.append(f"{current['url']}: HTTP {r.status}: {r.url}"))
            for rel in pages:
                url = current["url"] = urljoin(server, rel)
                resp = page.goto(url, wait_until="load")
                assert resp is not None and resp.status == 200, (rel, resp and resp.status)
                info = page.evaluate("""() => ({
                    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
                    names: [...document.querySelectorAll('a[name]')].map(e => e.name),
                    links: [...document.querySelectorAll('a[href], link[href]')].map(e => e.href),
                    srcs: [...document.querySelectorAll('script[src], img[src]')].map(e => e.src),
                    badImgs: [...document.querySelectorAll('img')].filter(i => !(i.complete && i.naturalWidth > 0))
                                                                  .map(i => i.getAttribute('src')),
                    nImgs: document.querySelectorAll('img').length,
                    footer: !!document.querySelector('footer .bottom-of-page')})""")
                if not info["footer"]: problems.append(f"{rel}: the page ends early (no footer: raw HTML in the text?)")
                ids[urldefrag(url).url] = set(info["ids"]) | set(info["names"])
                imgs += info["nImgs"]
                problems += [f"{rel}: image not loaded: {s}" for s in info["badImgs"]]
                for href in info["links"] + info["srcs"]:
                    if urlparse(href).netloc == urlparse(server).netloc: links.setdefault(href, rel)

            # every internal link answers 200, and a #fragment names an element of its page
            status = {}
            for href, rel in links.items():
                base, frag = urldefrag(href)
                if base not in status: status[base] = page.request.get(base).status
                if status[base] != 200: problems.append(f"{rel}: link {href} -> HTTP {status[base]}")
                elif frag and base in ids and frag not in ids[base]:
                    problems.append(f"{rel}: link {href}: no element with id {frag!r}")

            # the sidebar lists the notebooks in the README module table's order
            page.goto(server, wait_until="load")
            side = page.eval_on_selector_all(".sidebar-tree a.reference.internal", "els => els.map(e => e.getAttribute('href'))")
            listed = list(dict.fromkeys(h.split("#")[0].removesuffix(".html") for h in side))   # a page's sections follow it
            assert [s for s in listed if s in stems] == stems, listed

            # the search box finds an exported function (Sphinx's local index)
            syms = sorted(i for i in ids[urljoin(server, "00_core.html")] if i.startswith("artnb.core."))
            assert syms, "no API entry (artnb.core.*) on 00_core.html"
            sym = "artnb.core.open_image" if "artnb.core.open_image" in syms else syms[0]
            page.fill("input[name=q]", sym.split(".")[-1])
            page.keyboard.press("Enter")
            page.wait_for_url("**/search.html?q=*")
            current["url"] = page.url
            hit = page.locator("#search-results a", has_text=sym.split(".")[-1]).first
            hit.wait_for(state="visible", timeout=20_000)
            page.locator("#search-results", has_text="Search finished").wait_for(timeout=20_000)
            page.wait_for_load_state("networkidle")              # the result summaries it fetches, checked above
            current["url"] = urljoin(server, "00_core.html")

            # an exported function's signature and docstring are on its notebook's page
            page.goto(urljoin(server, "00_core.html"), wait_until="load")
            assert page.locator("dl.py.function dt.sig").count() > 0 and page.locator("dl.py.function dd p").count() > 0
        finally:
            browser.close()
    problems += [f"outside resource requested (the site must work offline): {u}" for u in sorted(set(outside))]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])
    assert imgs >= 1, "no image on any page"
    print(f"docs browser check: {len(pages)} pages, {len(status)} distinct internal URLs, {imgs} images, "
          f"{time.monotonic() - t0:.1f} s")
