"""README.md's commands are tests. Every command line in its fenced code blocks that calls an artnb console script
(`artnb-…`), `python -m artnb…`, or starts `artnb.train` through `accelerate launch` / `torchrun` is

- parsed by the parser of the script it names (the launcher's own parser too), so an option the code does not take
  (e.g. `artnb-train DATA --out models/x`) fails here;
- run for real, in README order, on tiny synthetic data (artnb.synth: SYNTHETIC) with tiny sizes, where that is cheap:
  every line except the second and later `artnb-train` lines (training is the one slow step; `tests/test_train.py`
  covers `--cv-folds`) and the launcher lines (several processes), with `artnb-demo` given `--dry-run`
  (it prints the Voila command instead of serving).

Each console script named also runs `--help`. Papermill lines (in code blocks, and the inline `papermill …` commands of
the paper table) are not run: their notebook must exist and every `-p`/`-r` name and every key of `-f`/`-y` must be a
parameter of that notebook (papermill's `inspect_notebook`). Substitutions: `~/…` and `DATA` become the synthetic dataset,
`path/to/paintings` and `paintings/` one class folder of it, `--img-size` 32, `--epochs` 1, `--cv-folds` 2, `--workers` 1,
`--bs` 8, and `artnb-train` gets `--arch simple_cnn --no-pretrained`. Commands run in a fresh folder, so the README's
relative paths (`models/x`, `preds.csv`) land there; `mkdir -p` lines run too."""
import os, re, shlex, subprocess, sys, time, tomllib, importlib
from pathlib import Path
import pytest, yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
README = (ROOT/'README.md').read_text(encoding='utf-8')
SCRIPTS = tomllib.loads((ROOT/'pyproject.toml').read_text())['project']['scripts']   # name -> 'module:function'
MODULE_MAIN = {'artnb.train': 'artnb-train'}    # `python -m artnb.X` -> the console script it is
ENV = {**os.environ, 'HF_HUB_OFFLINE': '1', 'MPLBACKEND': 'Agg', 'PYTHONIOENCODING': 'utf-8', 'PYTHONPATH': str(ROOT)}
P3 = ['Synth Mondrian', 'Synth Rothko', 'Synth Hokusai']
TINY = {'--img-size': '32', '--epochs': '1', '--cv-folds': '2', '--workers': '1', '--bs': '8'}


def code_blocks(text:str) -> list:
    "Bodies of the fenced code blocks of a Markdown text"
    return re.findall(r'^```[^\n]*\n(.*?)^```', text, re.M | re.S)

def command_lines(text:str) -> list:
    "Every command of the code blocks as an argv list: continuation lines joined, comments dropped, `a && b` split"
    cmds = []
    for block in code_blocks(text):
        for line in block.replace('\\\n', ' ').splitlines():
            try: toks = shlex.split(line, comments=True)
            except ValueError: continue     # not shell (e.g. a Python block's line)
            cur = []
            for t in toks + ['&&']:
                if t in ('&&', ';', '||'):
                    if cur: cmds.append(cur)
                    cur = []
                else: cur.append(t)
    return cmds

def classify(argv:list) -> tuple:
    "(kind, script, args): kind 'script' (an artnb console script or `python -m artnb…`), 'launcher', 'papermill', 'mkdir' or None"
    name = Path(argv[0]).name
    if name in SCRIPTS: return 'script', name, argv[1:]
    if name.startswith('python') and argv[1:2] == ['-m'] and argv[2].startswith('artnb'):
        assert argv[2] in MODULE_MAIN, f"README runs `python -m {argv[2]}`: add it to MODULE_MAIN"
        return 'script', MODULE_MAIN[argv[2]], argv[3:]
    if (name == 'accelerate' and argv[1:2] == ['launch']) or name == 'torchrun': return 'launcher', name, argv[1:]
    if name == 'papermill': return 'papermill', name, argv[1:]
    if name == 'mkdir': return 'mkdir', name, argv[1:]
    return None, name, argv[1:]

COMMANDS = [(argv, *classify(argv)) for argv in command_lines(README)]
ARTNB = [c for c in COMMANDS if c[1] in ('script', 'launcher')]
INLINE_PAPERMILL = [shlex.split(s) for s in re.findall(r'`(papermill [^`]+)`', README)]
PAPERMILL = [c[0] for c in COMMANDS if c[1] == 'papermill'] + INLINE_PAPERMILL
_id = lambda argv: ' '.join(argv)[:80]


def parser_of(script:str):
    "The argparse parser of an artnb console script (fastcore `call_parse`): parsing checks a line without running it"
    from fastcore.script import anno_parser
    mod, fn = SCRIPTS[script].split(':')
    return anno_parser(getattr(importlib.import_module(mod), fn))

def parse_or_fail(parser, args, what):
    try: return parser.parse_args(args)
    except SystemExit as e: pytest.fail(f"README line {what!r}: its parser refuses the arguments {args} (exit {e.code})")


def test_readme_has_the_commands():
    "The extraction finds the README's command sections (training, several GPUs, ONNX, demo) and papermill lines"
    scripts = {c[2] for c in ARTNB if c[1] == 'script'}
    assert {'artnb-train', 'artnb-eval', 'artnb-predict', 'artnb-scan', 'artnb-export-onnx', 'artnb-demo'} <= scripts, scripts
    assert {c[2] for c in ARTNB if c[1] == 'launcher'} == {'accelerate', 'torchrun'}
    assert len(PAPERMILL) >= 7


@pytest.mark.parametrize('argv,kind,script,args', ARTNB, ids=[_id(c[0]) for c in ARTNB])
def test_readme_command_parses(argv, kind, script, args):
    "Each artnb line's arguments are ones its parser takes; a launcher line must start `-m artnb.train` with arguments artnb-train takes"
    if kind == 'launcher':
        if script == 'accelerate':
            from accelerate.commands.launch import launch_command_parser
            ns = parse_or_fail(launch_command_parser(), args[1:], _id(argv))
        else:
            from torch.distributed.run import get_args_parser
            ns = parse_or_fail(get_args_parser(), args, _id(argv))
        assert ns.module and ns.training_script in MODULE_MAIN, f"{_id(argv)}: expected -m artnb.train"
        script, args = MODULE_MAIN[ns.training_script], ns.training_script_args
    parse_or_fail(parser_of(script), args, _id(argv))


@pytest.mark.parametrize('argv', PAPERMILL, ids=[_id(a) for a in PAPERMILL])
def test_readme_papermill_line(argv):
    "The notebook exists; every -p/-r name and every key of a -f file / -y text is a parameter of it"
    import papermill, papermill.cli
    p = papermill.cli.papermill.make_context('papermill', argv[1:]).params
    nb = ROOT/p['notebook_path']
    assert nb.is_file(), f"{_id(argv)}: {nb} does not exist"
    known = set(papermill.inspect_notebook(str(nb)))
    names = [k for k, _ in p['parameters'] + p['parameters_raw']]
    for f in p['parameters_file']:
        assert (ROOT/f).is_file(), f"{_id(argv)}: {f} does not exist"
        names += list(yaml.safe_load((ROOT/f).read_text()) or {})
    for y in p['parameters_yaml']: names += list(yaml.safe_load(y) or {})
    assert not set(names) - known, f"{_id(argv)}: {sorted(set(names) - known)} are not parameters of {nb.name}"


def run(argv, cwd, timeout=300):
    t = time.time()
    r = subprocess.run([str(a) for a in argv], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)
    return r, time.time() - t


def test_readme_scripts_help():
    "`--help` of every console script and `python -m` module the README names (no torch needed except for `-m artnb.train`)"
    from concurrent.futures import ThreadPoolExecutor
    names = sorted({c[2] for c in ARTNB if c[1] == 'script'})
    cmds = [[BIN/n, '--help'] for n in names] + [[sys.executable, '-m', m, '--help'] for m in MODULE_MAIN]
    with ThreadPoolExecutor(2) as ex: res = list(ex.map(lambda c: run(c, ROOT)[0], cmds))   # two at a time: each is mostly Python starting
    for n, r in zip(names, res):
        assert r.returncode == 0 and 'usage' in r.stdout, (n, r.stderr[-500:])
    for m, r in zip(MODULE_MAIN, res[len(names):]):
        assert r.returncode == 0 and 'usage' in r.stdout and '--epochs' in r.stdout, (m, r.stderr[-500:])


def tiny_args(script, args, data, images):
    "The README's arguments with tiny synthetic data and sizes"
    out = []
    for i, a in enumerate(args):
        if a.startswith('~') or a == 'DATA': a = str(data)
        elif a in ('path/to/paintings', 'paintings/'): a = str(images)
        elif i and args[i - 1] in TINY: a = TINY[args[i - 1]]
        out.append(a)
    if script == 'artnb-train': out += [x for x in ('--arch', 'simple_cnn', '--no-pretrained') if x not in out]
    return out


def test_readme_commands_run(tmp_path, synth):
    "The README's artnb command lines, in order, for real in a fresh folder (see the module docstring for what is skipped and substituted)"
    data = synth.root   # the suite's shared tiny dataset (tests/conftest.py): 3 painters x 8 images, 40 px
    images, work = data/'Synth Rothko', tmp_path/'work'
    work.mkdir()
    trained, ran, failures, helps = False, [], [], {}
    for argv, kind, script, args in COMMANDS:
        if kind == 'mkdir':
            for d in (a for a in args if not a.startswith('-')):
                assert not Path(d).is_absolute() and '..' not in Path(d).parts, d
                (work/d).mkdir(parents=True, exist_ok=True)
            continue
        if kind != 'script' or (script == 'artnb-train' and trained): continue
        a = tiny_args(script, args, data, images)
        if script == 'artnb-demo':
            if script not in helps: helps[script] = run([BIN/script, '--help'], ROOT)[0].stdout
            if '--dry-run' not in helps[script]: continue
            a.append('--dry-run')
        r, dt = run([BIN/script] + a, work)
        ran.append((script, round(dt, 1)))
        if r.returncode != 0: failures.append(f"{_id(argv)} -> exit {r.returncode}: {r.stderr.strip()[-400:]}")
        trained = trained or script == 'artnb-train'
    print('ran (script, seconds):', ran)
    assert not failures, '\n'.join(failures)
    assert trained and (work/'models'/'x'/'config.json').is_file() and (work/'models'/'x'/'model.onnx').is_file()
    assert {'artnb-train', 'artnb-eval', 'artnb-predict', 'artnb-scan', 'artnb-export-onnx'} <= {s for s, _ in ran}
