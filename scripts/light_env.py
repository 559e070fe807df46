"""The light install (`pip install 'artnb[onnx]'`) built offline from the packages already in this environment.

    python scripts/light_env.py DEST [--extra onnx]     # prints the new interpreter's path and the install size

artnb's own metadata says what the light install needs: its core requirements plus the named extra. This script follows
those requirements (and theirs, recursively, markers evaluated) through the installed distributions' metadata, and makes
a virtual environment whose site-packages links exactly those distributions and the `artnb` package: nothing else, so
`import torch` fails there. A requirement the metadata names but that is not installed here is an error, not a skip.
tests/test_light.py and scripts/bench_light.py use it; no network is needed.
"""
import argparse, os, subprocess, sys, sysconfig, venv
from importlib.metadata import distribution, PackageNotFoundError
from pathlib import Path
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]


def closure(extras=('onnx',), root='artnb') -> dict:
    "{normalised name: Distribution} of every distribution `root[extras]` needs, by the installed metadata"
    seen, todo = {}, [(root, tuple(extras))]
    while todo:
        name, ex = todo.pop()
        key = name.lower().replace('_', '-').replace('.', '-')
        if key in seen and not ex: continue
        try: d = distribution(name)
        except PackageNotFoundError: raise SystemExit(f"light_env: {name} is required but not installed here") from None
        seen[key] = d
        for r in map(Requirement, d.requires or []):
            envs = [{'extra': e} for e in ex] or [{'extra': ''}]
            if r.marker is None or any(r.marker.evaluate(e) for e in envs): todo.append((r.name, tuple(r.extras)))
    seen.pop(root, None)
    return seen


def _top_level(d) -> set:
    "Top-level entries (packages, modules, .libs folders, the .dist-info) of distribution `d` inside site-packages"
    out = set()
    for f in d.files or []:
        parts = Path(f).parts
        if parts and parts[0] not in ('..', '__pycache__') and not parts[0].endswith('.pth'): out.add(parts[0])
    return out


def size_of(dists) -> int:
    "Bytes on disk of the distributions' files"
    n = 0
    for d in dists.values():
        for f in d.files or []:
            p = Path(d.locate_file(f))
            if p.is_file(): n += p.stat().st_size
    return n


def build(dest, extras=('onnx',)) -> Path:
    "A virtual environment at `dest` (without pip) holding artnb and exactly the distributions of `closure(extras)`, linked; returns its python"
    dest = Path(dest)
    venv.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(dest)
    py = dest/'bin'/'python'
    site = Path(subprocess.run([str(py), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                               capture_output=True, text=True, check=True).stdout.strip())
    here = Path(sysconfig.get_paths()['purelib'])
    for d in closure(extras).values():
        for top in _top_level(d):
            src = Path(d.locate_file(top))
            if src.exists() and not (site/top).exists(): os.symlink(src, site/top)
    os.symlink(REPO/'artnb', site/'artnb')   # the package itself, as in an editable install
    for ep in distribution('artnb').entry_points.select(group='console_scripts'):   # the commands, as pip writes them
        mod, fn = ep.value.split(':')
        s = dest/'bin'/ep.name
        s.write_text(f"#!{py}\nimport sys\nfrom {mod} import {fn}\nsys.exit({fn}())\n")
        s.chmod(0o755)
    return py


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('dest'); ap.add_argument('--extra', action='append', default=None)
    a = ap.parse_args()
    extras = tuple(a.extra or ['onnx'])
    py = build(a.dest, extras)
    print(py)
    print(f"{len(closure(extras))} distributions, {size_of(closure(extras)) / 2**20:.0f} MiB", file=sys.stderr)


if __name__ == '__main__': main()
