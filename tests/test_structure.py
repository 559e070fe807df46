"The package's shape: no import cycles, the inference core below analysis and cam, one definition of each shared step, module sizes held"
import ast
from pathlib import Path
import pytest

PKG = Path(__file__).resolve().parents[1]/'artnb'
MODULES = sorted(p.stem for p in PKG.glob('*.py') if p.stem not in ('__init__', '_modidx'))


def _imports(name) -> set:
    "artnb modules `name` imports anywhere in its source (top level, inside functions, in a `__main__` block)"
    out = set()
    tree = ast.parse((PKG/f'{name}.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ''
            if node.level == 1: out.add(mod.split('.')[0] if mod else '')
            elif mod.startswith('artnb.'): out.add(mod.split('.')[1])
            elif mod == 'artnb': out.update(a.name for a in node.names if a.name in MODULES)
        elif isinstance(node, ast.Import):
            out.update(a.name.split('.')[1] for a in node.names if a.name.startswith('artnb.'))
    return out & set(MODULES)


def _top_level(name, deep=False) -> set:
    "artnb modules imported at module level (what `import artnb.<name>` loads)"
    tree = ast.parse((PKG/f'{name}.py').read_text())
    out = set()
    for node in tree.body:
        for n in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) else []:
            if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module: out.add(n.module.split('.')[0])
            elif isinstance(n, ast.ImportFrom) and (n.module or '').startswith('artnb.'): out.add(n.module.split('.')[1])
    return out & set(MODULES)


def test_no_import_cycle():
    graph = {m: _imports(m) - {m} for m in MODULES}
    seen, stack = {}, []
    def visit(m):
        seen[m] = 'open'; stack.append(m)
        for d in sorted(graph[m]):
            if seen.get(d) == 'open': pytest.fail(f"import cycle: {' -> '.join(stack[stack.index(d):] + [d])}")
            if d not in seen: visit(d)
        seen[m] = 'done'; stack.pop()
    for m in MODULES:
        if m not in seen: visit(m)


def test_inference_core_is_low():
    "What `import artnb.inference` loads: never analysis, cam, widgets or the experiment layer; calibration, card and hub import no torch, fastai or matplotlib themselves"
    closure, todo = set(), ['inference']
    while todo:
        m = todo.pop()
        for d in _top_level(m) - closure: closure.add(d); todo.append(d)
    assert not closure & {'analysis', 'cam', 'widgets', 'experiment', 'evaluate', 'predict', 'export', 'train', 'training', 'cli'}, closure
    # the decision rule and the model-folder lookup stand alone (numpy/scipy only); the card needs only core
    assert _top_level('hub') == set() and _top_level('calibration') == set() and _top_level('card') == {'core'}
    for light in ('calibration', 'hub', 'card'):
        mods = {a.name.split('.')[0] for n in ast.walk(ast.parse((PKG/f'{light}.py').read_text())) if isinstance(n, ast.Import) for a in n.names}
        mods |= {(n.module or '').split('.')[0] for n in ast.walk(ast.parse((PKG/f'{light}.py').read_text())) if isinstance(n, ast.ImportFrom) and not n.level}
        assert not mods & {'torch', 'fastai', 'matplotlib', 'timm'}, (light, mods)


ONE_DEFINITION = ['open_image', 'to_rgb', 'load_rgb', 'image_from_bytes', 'fit_temperature', 'fit_decision_rule', 'choose_binary_threshold',
                  'reject_threshold', 'decide', 'model_folder', 'norm_name', 'to_jsonable', 'can_reach', 'calibrate',
                  # preprocessing for inference, probabilities, the config and its reader: one each, shared by both backends
                  'model_input', 'resize_for_model', 'normalize_batch', 'softmax', 'positive_index', 'check_config', 'read_config',
                  'ModelConfig', 'as_list']


def test_one_definition_each():
    "Image reading, the decision rule and its fitting, model-folder detection, name normalisation: defined once in the package"
    defs = {}
    for m in MODULES:
        for node in ast.parse((PKG/f'{m}.py').read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)): defs.setdefault(node.name, []).append(m)
    for name in ONE_DEFINITION: assert len(defs.get(name, [])) == 1, (name, defs.get(name))
    for twin in ('_norm', '_norm_name', '_model_folder', '_nll', 'read_upload_rgb'): assert twin not in defs, (twin, defs[twin])


# what `pip install 'artnb[onnx]'` imports: numpy, Pillow, pandas, fastcore, huggingface_hub, onnxruntime, and no heavier artnb module
LIGHT = {'core', 'calibration', 'modelfile', 'hub', 'runtime', 'predict', 'cli', 'train'}   # train: the `python -m` entry point


def _module_level_imports(name) -> tuple:
    "(third-party top-level packages, artnb modules) that module `name` imports when it is imported (not inside functions)"
    ext, own = set(), set()
    for node in ast.parse((PKG/f'{name}.py').read_text()).body:
        if isinstance(node, ast.Import): ext |= {a.name.split('.')[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level: own.add((node.module or '').split('.')[0])
            else: ext.add((node.module or '').split('.')[0])
    return ext, own


def test_light_modules_import_no_training_stack():
    "The light install's modules import no torch / fastai / timm / scipy / matplotlib and no artnb module outside the light set when imported (tests/test_light.py runs them without those packages)"
    for m in sorted(LIGHT):
        ext, own = _module_level_imports(m)
        assert not ext & {'torch', 'torchvision', 'fastai', 'timm', 'scipy', 'sklearn', 'matplotlib', 'fastprogress'}, (m, ext)
        assert own <= LIGHT, (m, own - LIGHT)


# modules still over ~600 lines, each capped at today's size so it can only shrink
OVERSIZE = {'analysis': 624, 'synth': 610}


def test_module_sizes():
    for m in MODULES:
        n = len((PKG/f'{m}.py').read_text().splitlines())
        assert n <= OVERSIZE.get(m, 600), f"artnb/{m}.py has {n} lines (limit {OVERSIZE.get(m, 600)})"
