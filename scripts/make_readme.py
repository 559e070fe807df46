#!/usr/bin/env python
"""Build README.md from nbs/index.ipynb (nbdev's readme_nb) without Quarto.

nbdev 3's `nbdev-readme` renders through Quarto, which is not installable offline here, so this
script does the same job: it executes the notebook in-process (execnb, as `nbdev-test` does) and
writes GitHub markdown. Markdown cells are copied; a code cell's source is shown unless it
carries `#| hide` or `#| echo: false`; outputs are shown unless `#| hide` or `#| output: false`:
text/markdown verbatim, text/plain in a fenced block. Deterministic for a given tree, so CI can
check that the committed README is current."""
import os, re, sys
from pathlib import Path
from fastcore.nbio import read_nb
from execnb.shell import CaptureShell

root = Path(__file__).resolve().parents[1]
src, dest = root/'nbs'/'index.ipynb', root/'README.md'

def directives(source):
    return {m.group(1).strip(): (m.group(2) or '').strip()
            for m in re.finditer(r'^#\|\s*([\w-]+)\s*:?\s*(.*)$', source, re.M)}

def strip_directives(source):
    return '\n'.join(l for l in source.splitlines() if not l.startswith('#|')).strip()

def render_output(o):
    data = o.get('data', {})
    if o.get('output_type') == 'stream': return f"```\n{''.join(o.get('text', '')).rstrip()}\n```"
    if 'text/markdown' in data: return ''.join(data['text/markdown']).strip()
    if 'text/plain' in data: return f"```\n{''.join(data['text/plain']).rstrip()}\n```"
    return ''

def main():
    os.chdir(root/'nbs')
    nb = read_nb(src)
    sh = CaptureShell()
    sh.run_all(nb, exc_stop=True)
    parts = []
    for c in nb.cells:
        if c.cell_type == 'markdown': parts.append(c.source.strip()); continue
        if c.cell_type != 'code': continue
        d = directives(c.source)
        if 'hide' in d: continue
        code = strip_directives(c.source)
        if code and d.get('echo') != 'false': parts.append(f"```python\n{code}\n```")
        if d.get('output') != 'false':
            parts += [r for r in (render_output(o) for o in c.get('outputs', [])) if r]
    text = '\n\n'.join(p for p in parts if p) + '\n'
    dest.write_text(text, encoding='utf-8')
    print(f"wrote {dest.relative_to(root)} ({len(text.splitlines())} lines) from {src.relative_to(root)}")

if __name__ == '__main__': main()
