#!/usr/bin/env python
"""Build artnb's documentation site from the notebooks: `python scripts/build_docs.py [OUT]` (default `_docs/`).

The notebooks in nbs/ are the documentation (nbdev's idea); nbdev renders them with Quarto, which cannot be installed
offline, so this uses Sphinx + MyST-NB (why: docs/conf.py). It copies every notebook into a temporary folder, shaped
as nbdev's docs shape them, and runs `sphinx-build -c docs` on that copy; nbs/ is only read.

* Pages come in the order of the README's module table (nbs/index.ipynb); a notebook missing from the table still gets
  a page, under "Other notebooks", and the build says so.
* `#| hide` and `#| exporti` cells and `#| default_exp` lines are left out, `#|` lines are stripped from the code shown,
  `#| echo: false` hides a cell's code and `#| output: false` its outputs.
* Every `#| export` cell gets the signature and docstring of each public definition in it (a Sphinx Python-domain
  entry, so it is in the index and the search), read statically with `ast` (nothing is imported), and its code folds
  away under "Show code cell source".
* Notebooks are rendered as stored (cleaned, so mostly without outputs). The experiment notebooks' committed figures
  (figures/<notebook>/*.png, the reference run) are shown after the cell whose `save_fig` writes them; the rest at the
  end of the page.
* The index page is nbs/index.ipynb run in-process as scripts/make_readme.py runs it (so it shows the README's results
  table); if that fails it is rendered as stored and the build says so.
"""
import ast, json, os, re, shutil, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS, FIGS, CONF = ROOT / 'nbs', ROOT / 'figures', ROOT / 'docs'
_DIRECTIVE = re.compile(r'^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')


def directives(src):
    "{name: value} of a cell's nbdev `#|` directives"
    return {m.group(1): m.group(2) for m in map(_DIRECTIVE.match, src.splitlines()) if m}


def strip_directives(src):
    return '\n'.join(l for l in src.splitlines() if not _DIRECTIVE.match(l)).strip('\n')


def src_of(cell):
    s = cell.get('source', '')
    return ''.join(s) if isinstance(s, list) else s


def read_nb(path): return json.loads(Path(path).read_text(encoding='utf-8'))


# ---------------------------------------------------------------------------------------------------- page order
_ROW = re.compile(r'^\|\s*`([\w.-]+)`(?:\s*(?:…|\.\.\.)\s*`([\w.-]+)`)?\s*\|\s*([^|]*)\|', re.M)


def table_rows(index_nb):
    "[(first, last or None, module cell)] of the module table's rows, in order"
    text = '\n'.join(src_of(c) for c in index_nb['cells'] if c['cell_type'] == 'markdown')
    return [(m.group(1), m.group(2), m.group(3).strip()) for m in _ROW.finditer(text)]


def notebook_order(nbs=NBS):
    """[(caption, [notebook stem])]: the README module table's order (rows with a module, then the rest), and the
    notebooks the table does not name, sorted, under "Other notebooks"."""
    stems = sorted(p.stem for p in Path(nbs).glob('*.ipynb') if p.stem != 'index')
    groups, seen = {'Library': [], 'Experiments and demo': []}, set()
    for first, last, module in table_rows(read_nb(Path(nbs) / 'index.ipynb')):
        names = [s for s in stems if first <= s <= last] if last else [first]
        cap = 'Library' if module.startswith('`') else 'Experiments and demo'
        for n in names:
            if n in stems and n not in seen: groups[cap].append(n); seen.add(n)
    groups['Other notebooks'] = [s for s in stems if s not in seen]
    return [(k, v) for k, v in groups.items() if v]


# ---------------------------------------------------------------------------------------------------- API entries
def _args(a, drop_first=False):
    a = ast.arguments(posonlyargs=list(a.posonlyargs), args=list(a.args), vararg=a.vararg, kwonlyargs=a.kwonlyargs,
                      kw_defaults=a.kw_defaults, kwarg=a.kwarg, defaults=list(a.defaults))
    if drop_first:
        if a.posonlyargs: a.posonlyargs.pop(0)
        elif a.args: a.args.pop(0)
        n = len(a.posonlyargs) + len(a.args)
        a.defaults = a.defaults[-n:] if n else []
    return ast.unparse(a).replace('\n', ' ')


def _ret(f): return f' -> {ast.unparse(f.returns)}' if f.returns is not None else ''


def _deco_names(node): return {ast.unparse(d).split('(')[0].split('.')[-1] for d in node.decorator_list}


def _text(doc):
    "A docstring as Markdown text: `<` outside code spans escaped, so `<style>` in a docstring is not raw HTML"
    parts = re.split(r'(`+[^`]*`+)', (doc or '').strip())
    return ''.join(p if p.startswith('`') else p.replace('&', '&amp;').replace('<', '&lt;') for p in parts)


def _entry(kind, sig, doc, module, noindex):
    doc = _text(doc)
    fence = '`' * max(3, 1 + max((len(m) for m in re.findall(r'`+', doc)), default=0))
    opts = [f':module: {module}'] if module else []
    if noindex: opts.append(':no-index:')
    return f"{fence}{{py:{kind}}} {sig}\n" + ''.join(o + '\n' for o in opts) + f"\n{doc}\n{fence}\n"


def api_entries(src, module, seen):
    """MyST `{py:...}` directives for the public top-level definitions in one export cell's code (functions, classes
    with their public methods, fastcore `@patch` methods, public constants); [] when the code does not parse."""
    try: tree = ast.parse(strip_directives(src))
    except SyntaxError: return []
    out = []

    def add(kind, name, sig, doc):
        full = f'{module}.{name}' if module else name
        out.append(_entry(kind, sig, doc, module, full in seen)); seen.add(full)

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith('_'):
            first = (node.args.posonlyargs + node.args.args)[:1]
            patch = _deco_names(node) & {'patch', 'patch_to'} and first and first[0].annotation is not None
            if patch:
                cls = ast.unparse(first[0].annotation).split('|')[0].strip().split('.')[-1]
                name = f'{cls}.{node.name}'
                add('method', name, f'{name}({_args(node.args, True)}){_ret(node)}', ast.get_docstring(node))
            else:
                add('function', node.name, f'{node.name}({_args(node.args)}){_ret(node)}', ast.get_docstring(node))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith('_'):
            init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == '__init__'), None)
            if init is not None: sig = f'{node.name}({_args(init.args, True)})'
            elif 'dataclass' in _deco_names(node):
                fields = [f'{ast.unparse(n.target)}: {ast.unparse(n.annotation)}' + (f' = {ast.unparse(n.value)}' if n.value else '')
                          for n in node.body if isinstance(n, ast.AnnAssign) and 'ClassVar' not in ast.unparse(n.annotation)]
                sig = f"{node.name}({', '.join(fields)})"
            else:
                bases = ', '.join(ast.unparse(b) for b in node.bases)
                sig = f'{node.name}({bases})' if bases else node.name
            add('class', node.name, sig, ast.get_docstring(node))
            for m in node.body:
                if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and not m.name.startswith('_'):
                    static = 'staticmethod' in _deco_names(m)
                    kind = 'property' if 'property' in _deco_names(m) else 'method'
                    name = f'{node.name}.{m.name}'
                    sig = name if kind == 'property' else f'{name}({_args(m.args, not static)}){_ret(m)}'
                    add(kind, name, sig, ast.get_docstring(m))
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name) and not t.id.startswith('_') and t.id != '__all__' and node.value is not None:
                    val = ast.unparse(node.value).replace('\n', ' ')
                    add('data', t.id, t.id, f'`= {val[:117] + "..." if len(val) > 120 else val}`'.replace('``', '` `'))
    return out


# ---------------------------------------------------------------------------------------------------- staging
def md_cell(text): return {'cell_type': 'markdown', 'metadata': {}, 'source': text}


def _slug(s): return re.sub(r'[^A-Za-z0-9._-]+', '_', s).strip('_.')   # as artnb.plots.save_fig names files


def _name_defaults(lib=ROOT / 'artnb'):
    "{function: default of its `name` parameter} over the library, read statically (e.g. plot_compare -> 'recipes')"
    out = {}
    for f in Path(lib).glob('*.py'):
        for n in ast.walk(ast.parse(f.read_text(encoding='utf-8'))):
            if isinstance(n, ast.FunctionDef):
                a = n.args.args[len(n.args.args) - len(n.args.defaults):]
                out.update({n.name: d.value for x, d in zip(a, n.args.defaults)
                            if x.arg == 'name' and isinstance(d, ast.Constant) and isinstance(d.value, str)})
    return out


def fig_wrappers(codes):
    "{function: (index, name) of its parameter that it passes to save_fig as the figure's name} over a notebook's cells"
    out = {}
    for code in codes:
        try: tree = ast.parse(code)
        except SyntaxError: continue
        for f in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            params = [a.arg for a in f.args.posonlyargs + f.args.args]
            for c in (n for n in ast.walk(f) if isinstance(n, ast.Call) and ast.unparse(n.func).endswith('save_fig')):
                arg = c.args[2] if len(c.args) > 2 else next((k.value for k in c.keywords if k.arg == 'name'), None)
                if isinstance(arg, ast.Name) and arg.id in params: out[f.name] = (params.index(arg.id), arg.id)
    return out


def figure_patterns(code, defaults, wrappers={}):
    """Regexes for the figure files a cell writes: `save_fig(fig, out, NAME)`, a notebook's own wrapper of it, and any
    call given `out_dir=` (its `name=`, else the function's default name); f-string parts become `.+`."""
    try: tree = ast.parse(code)
    except SyntaxError: return []
    pats = []
    for c in ast.walk(tree):
        if not isinstance(c, ast.Call): continue
        fn = ast.unparse(c.func).split('.')[-1]
        kw = {k.arg: k.value for k in c.keywords if k.arg}
        if fn == 'save_fig': name = c.args[2] if len(c.args) > 2 else kw.get('name')
        elif fn in wrappers:
            i, pname = wrappers[fn]
            name = c.args[i] if len(c.args) > i else kw.get(pname)
        elif 'out_dir' in kw: name = kw.get('name', ast.Constant(defaults.get(fn)))
        else: continue
        if isinstance(name, ast.Constant) and isinstance(name.value, str):
            pats.append(re.escape(_slug(name.value)))
        elif isinstance(name, ast.JoinedStr):
            pats.append(''.join(re.escape(_slug(v.value)) if isinstance(v, ast.Constant) else '.+' for v in name.values))
    return [re.compile(p + '$') for p in pats if p]


def _fig_md(nb_name, f):
    return (f"```{{figure}} figures/{nb_name}/{f.name}\n:alt: {f.stem.replace('_', ' ')}\n\n"
            f"`figures/{nb_name}/{f.name}`, from the committed reference run (default parameters)\n```\n")


def demote_h1(text, state):
    "Markdown `text` with every H1 after the notebook's first made an H2 (one title per page, one sidebar entry)"
    out, fence = [], None
    for line in text.split('\n'):
        m = re.match(r'\s*(`{3,}|~{3,})', line)
        if m and (fence is None or m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence)):
            fence = None if fence else m.group(1)
        elif fence is None and re.match(r'# \S', line):
            if state['h1']: line = '#' + line
            state['h1'] = True
        out.append(line)
    return '\n'.join(out)


def stage_notebook(path, dest, seen, figures=FIGS):
    "Write the docs copy of notebook `path` to `dest`: nbdev's directives applied, API entries and figures added."
    nb = read_nb(path)
    module = next((directives(src_of(c))['default_exp'] for c in nb['cells']
                   if c['cell_type'] == 'code' and 'default_exp' in directives(src_of(c))), None)
    module = f'artnb.{module}' if module else None
    figs = sorted((figures / path.stem).glob('*.png')) if (figures / path.stem).is_dir() else []
    placed, cells, h1 = set(), [], {'h1': False}
    defaults = _name_defaults() if figs else {}
    wrappers = fig_wrappers(strip_directives(src_of(c)) for c in nb['cells'] if c['cell_type'] == 'code') if figs else {}
    for c in nb['cells']:
        src = src_of(c)
        if c['cell_type'] != 'code':
            if c['cell_type'] == 'markdown':   # prose links to committed figures (../figures/<nb>/x.png from nbs/): the staged copies
                src = demote_h1(src.replace('](../figures/', '](figures/').replace('src="../figures/', 'src="figures/'), h1)
                placed.update(f for f in figs if f'figures/{path.stem}/{f.name}' in src)
            cells.append({**c, 'source': src}); continue
        d = directives(src)
        if 'hide' in d or 'exporti' in d: continue
        code = strip_directives(src)
        if not code.strip(): continue
        tags = [t for t in c.get('metadata', {}).get('tags', []) if t != 'parameters'] \
            + (['parameters'] if 'parameters' in c.get('metadata', {}).get('tags', []) else [])
        if 'export' in d or 'exports' in d:
            entries = api_entries(src, module, seen)
            if entries: cells.append(md_cell('\n'.join(entries)))
            if 'export' in d: tags.append('hide-input')
        if d.get('echo') == 'false': tags.append('remove-input')
        if d.get('output') == 'false': tags.append('remove-output')
        cells.append({**c, 'source': code, 'metadata': {'tags': tags} if tags else {}})
        if figs:                                                  # the committed figures this cell writes
            for pat in figure_patterns(code, defaults, wrappers):
                for f in figs:
                    if f not in placed and pat.match(f.stem): cells.append(md_cell(_fig_md(path.stem, f))); placed.add(f)
    rest = [f for f in figs if f not in placed]
    if rest:
        cells.append(md_cell('## Figures of the committed reference run\n\nWritten by this notebook with its default '
                             f'parameters into `figures/{path.stem}/`.\n'))
        cells += [md_cell(_fig_md(path.stem, f)) for f in rest]
    if figs:
        (dest.parent / 'figures' / path.stem).mkdir(parents=True, exist_ok=True)
        for f in figs: shutil.copy2(f, dest.parent / 'figures' / path.stem / f.name)
    for i, c in enumerate(cells):                                 # nbformat >= 4.5 wants an id on every cell
        c['id'] = f'c{i}'
        if c['cell_type'] == 'code': c.setdefault('outputs', []); c.setdefault('execution_count', None)
    nb['cells'], nb['nbformat'], nb['nbformat_minor'] = cells, 4, 5
    dest.write_text(json.dumps(nb, indent=1), encoding='utf-8')
    return len(figs)


def run_index(nb, nbs=NBS):
    "nbs/index.ipynb executed in-process (as scripts/make_readme.py does), so its results table is there"
    from execnb.shell import CaptureShell
    from fastcore.nbio import dict2nb
    nbo, cwd = dict2nb(nb), os.getcwd()
    os.chdir(nbs)
    try: CaptureShell().run_all(nbo, exc_stop=True)
    finally: os.chdir(cwd)
    return json.loads(json.dumps(nbo, default=dict))


def stage_index(dest, order, nbs=NBS, execute=True):
    nb = read_nb(nbs / 'index.ipynb')
    if execute:
        try: nb = run_index(nb, nbs)
        except Exception as e: print(f"build_docs: index.ipynb did not run ({type(e).__name__}: {e}); rendered as stored")
    names = {n for _, ns in order for n in ns}
    for c in nb['cells']:                                          # the module table's notebook names become links
        if c['cell_type'] == 'markdown':
            c['source'] = re.sub(r'^(\|\s*)`([\w.-]+)`(?:(\s*…\s*)`([\w.-]+)`)?',
                                 lambda m: m.group(1) + f'[`{m.group(2)}`]({m.group(2)}.ipynb)'
                                 + (f'{m.group(3)}[`{m.group(4)}`]({m.group(4)}.ipynb)' if m.group(4) else '')
                                 if m.group(2) in names else m.group(0), src_of(c), flags=re.M)
    nb['cells'].append(md_cell('\n'.join(f"```{{toctree}}\n:hidden:\n:caption: {cap}\n\n" + '\n'.join(ns) + '\n```\n'
                                         for cap, ns in order)))
    tmp = dest.with_suffix('.raw.json')
    tmp.write_text(json.dumps(nb), encoding='utf-8')
    stage_notebook(tmp, dest, set())
    tmp.unlink()


def build(out, nbs=NBS, execute_index=True, quiet=True):
    out = Path(out).resolve()
    t0 = time.perf_counter()
    order = notebook_order(nbs)
    if any(cap == 'Other notebooks' for cap, _ in order):
        print('build_docs: not in the README module table (nbs/index.ipynb), listed under "Other notebooks": '
              + ', '.join(dict(order)['Other notebooks']))
    with tempfile.TemporaryDirectory(prefix='artnb-docs-') as tmp:
        src, seen, nfig = Path(tmp) / 'src', set(), 0
        src.mkdir()
        for _, ns in order:
            for n in ns: nfig += stage_notebook(nbs / f'{n}.ipynb', src / f'{n}.ipynb', seen)
        stage_index(src / 'index.ipynb', order, nbs, execute_index)
        t1 = time.perf_counter()
        html = Path(tmp) / 'html'      # built here, then moved: MyST-NB writes jupyter_execute/ beside its output folder
        cmd = [sys.executable, '-m', 'sphinx', '-b', 'html', '-c', str(CONF), '-d', str(Path(tmp) / 'doctrees'),
               '--jobs', '1'] + (['-q'] if quiet else []) + [str(src), str(html)]
        r = subprocess.run(cmd, env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
        if r.returncode: sys.exit(f'build_docs: sphinx-build failed (exit {r.returncode})')
        if out.exists(): shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(html), str(out))
    (out / '.nojekyll').touch()
    if (out / '_sources').is_dir() and not any((out / '_sources').iterdir()): (out / '_sources').rmdir()
    pages = sum(1 for _, ns in order for _ in ns)
    print(f'build_docs: {pages} notebook pages + the index ({nfig} committed figures) -> {out} '
          f'(staging {t1 - t0:.1f} s, sphinx {time.perf_counter() - t1:.1f} s)')
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ('-h', '--help'): print(__doc__); return
    try: import sphinx, myst_nb, furo  # noqa: F401
    except ImportError as e:
        sys.exit(f"build_docs: {e.name} is missing: pip install -e '.[dev]' (Sphinx, MyST-NB and Furo)")
    build(argv[0] if argv else ROOT / '_docs')


if __name__ == '__main__': main()
