"""Hostile files and bad parameters: every case gets a one-line message and the right exit code, nothing hangs.

One test per row of the issue's table (rows 1-10), the classic bad images, and more: CSVs, configs and inputs that make no
sense. CLIs run as subprocesses of the venv's `artnb-scan` / `artnb-predict`, each with a timeout.
Exit codes: 0 every input handled, 1 some inputs unreadable (listed), 2 wrong arguments.
"""
import io, json, os, shutil, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import numpy as np, pandas as pd, pytest
from PIL import Image

from artnb.data import scan, IMAGE_EXTS, art_dls, split_items
from artnb.validate import cache_resized, validate, inspect_image, write_bad_fixture, scan_main
from artnb.core import sample_image, load_rgb, read_regular_file, write_csv_atomic, BadImage, UsageError
from artnb.learner import art_learner
from artnb.inference import save_model, load_model, check_config, Predictor
from artnb.predict import predict_files, predict_main, expand_paths
from fastcore.script import CliError

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TIMEOUT = 600   # seconds per CLI run (they take ~10 s); a hang fails the test instead of blocking the suite
ENV = {**os.environ, 'PYTHONPATH': str(ROOT), 'HF_HUB_OFFLINE': '1', 'PYTHONIOENCODING': 'utf-8'}


def cli(name, *args):
    "(exit status, stdout, stderr) of `name` (artnb-scan / artnb-predict) run with `args`, killed after TIMEOUT s"
    exe = BIN/name
    assert exe.exists(), f"{exe} missing: pip install -e . in the venv"
    r = subprocess.run([str(exe)] + [os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in args],
                       capture_output=True, text=True, env=ENV, timeout=TIMEOUT, errors='backslashreplace')
    return r.returncode, r.stdout, r.stderr


def last_line(s): return s.strip().splitlines()[-1] if s.strip() else ''


def picture(seed, size=(64, 48)):
    "A distinct small test image per seed (`artnb.core.sample_image`)"
    return sample_image(seed, size)


def dataset(d, n=3):
    "An ImageFolder with classes a and b, `n` distinct good images each"
    for c, off in (('a', 0), ('b', 100)):
        (d/c).mkdir(parents=True, exist_ok=True)
        for i in range(n): picture(off + i).save(d/c/f'{i}.jpg', quality=90)
    return d


@pytest.fixture(scope='module')
def model(binary_model):
    "The suite's shared saved model folder (tests/conftest.py: a 2-class simple_cnn, calibrated): enough for every loading and prediction check; copied before any change"
    return binary_model[2]


def tamper(src, dst, text=None, **changes):
    "Copy of model folder `src` at `dst` with config.json changed (keys set / removed with None) or replaced by `text`"
    shutil.copytree(src, dst)
    if text is None:
        c = json.loads((src/'config.json').read_text())
        for k, v in changes.items():
            if v is None: c.pop(k)
            else: c[k] = v
        text = json.dumps(c)
    (dst/'config.json').write_bytes(text if isinstance(text, bytes) else text.encode())
    return dst


# ---- row 1: FIFO and a symlink to an endless device inside a class folder
def test_row1_fifo_and_device_symlink(tmp_path, model):
    d = dataset(tmp_path/'ds')
    os.mkfifo(d/'a'/'p.jpg')
    os.symlink('/dev/zero', d/'b'/'zero.png')
    t0 = time.time()
    with pytest.raises(BadImage, match=r'not a regular file \(a FIFO'): inspect_image(d/'a'/'p.jpg')
    with pytest.raises(BadImage, match=r'not a regular file \(a character device\)'): load_rgb(d/'b'/'zero.png')
    assert time.time() - t0 < 2
    rc, so, se = cli('artnb-scan', d)
    assert rc == 1, se
    assert 'not a regular file (a FIFO (named pipe)): ' in so and 'not a regular file (a character device): ' in so
    assert '2 of 8 files refused' in se
    out = tmp_path/'preds.csv'
    rc, so, se = cli('artnb-predict', model, d, '--out', out)
    assert rc == 1, se
    df = pd.read_csv(out, keep_default_na=False)
    err = dict(zip(df.path.map(lambda p: Path(p).relative_to(d).as_posix()), df.error))
    assert err['a/p.jpg'].startswith('not a regular file (a FIFO') and err['b/zero.png'] == 'not a regular file (a character device)'
    assert len(err) == 8 and sum(e == '' for e in err.values()) == 6


# ---- row 2: a 12000 x 12000 PNG is a decompression bomb for prediction too
def test_row2_large_png_refused_everywhere(tmp_path, model):
    big = tmp_path/'in'/'big.png'; big.parent.mkdir()
    Image.new('1', (12000, 12000)).save(big)                    # ~20 KB on disk, 144 M pixels
    assert big.stat().st_size < 1_000_000
    msg = 'decompression bomb (12000 x 12000 px > 89478485 px limit)'
    with pytest.raises(BadImage) as e: inspect_image(big)
    assert e.value.reason == msg
    pred = load_model(model)
    with pytest.raises(BadImage, match=r'decompression bomb \(12000 x 12000'): pred.predict([big])
    picture(1).save(tmp_path/'in'/'ok.jpg')
    out = tmp_path/'p.csv'
    rc, so, se = cli('artnb-predict', model, tmp_path/'in', '--out', out)
    assert rc == 1 and f'big.png: {msg}' in se, se
    df = pd.read_csv(out, keep_default_na=False)
    assert df.error.tolist() == [msg, '']


# ---- row 3: a config that would allocate gigabytes is refused before building anything
@pytest.mark.parametrize('changes,msg', [
    (dict(head='dense', head_kw={'widths': [40000, 40000]}), 'M parameters, over the 150 M budget'),
    (dict(arch='vit_large_patch16_224', size=[224, 224]), 'M parameters, over the 150 M budget'),
    (dict(arch='vit_large_patch16_224'), 'M parameters, over the 150 M budget'),
    (dict(head='s0'), 'Weights do not match simple_cnn/s0'),
    (dict(size=[100000, 100000]), 'size must be [height, width]'),
])
def test_row3_model_size_budget(tmp_path, model, changes, msg):
    m = tamper(model, tmp_path/'m', **changes)
    t0 = time.time()
    with pytest.raises(ValueError) as e: load_model(m)
    assert msg in str(e.value) and '\n' not in str(e.value)
    assert time.time() - t0 < 30


def test_row3_cli_budget(tmp_path, model):
    m = tamper(model, tmp_path/'m', head='dense', head_kw={'widths': [40000, 40000]})
    picture(0).save(tmp_path/'x.jpg')
    rc, so, se = cli('artnb-predict', m, tmp_path/'x.jpg', '--out', tmp_path/'p.csv')
    assert rc == 2 and se.startswith('artnb-predict: model ') and 'over the 150 M budget' in se and len(se.strip().splitlines()) == 1, se
    assert not (tmp_path/'p.csv').exists()


# ---- row 4: configs with NaN / inf / wrong types / bad encoding / deep nesting
@pytest.mark.parametrize('changes,text,msg', [
    (dict(std=[float('nan'), 0.2, 0.2]), None, 'non-finite number (NaN)'),
    (dict(mean=[float('inf'), 0.4, 0.4]), None, 'non-finite number (Infinity)'),
    (dict(head_kw={'p': 5}), None, 'head_kw.p must be a number in [0, 1)'),
    (dict(head_kw={'p': 'evil'}), None, 'head_kw.p must be a number in [0, 1)'),
    (dict(std=[0, 1, 1]), None, 'std must be 3 finite numbers > 0'),
    (dict(single_logit='yes'), None, 'single_logit must be true or false'),
    (dict(classes=['a', 'a']), None, 'duplicate names'),
    (dict(classes='ab'), None, 'classes must be a list'),
    ({}, b'{"format": "artnb-model", "arch": "r\xff"}', 'not UTF-8 text (byte 0xff'),
    ({}, '[' * 200000 + ']' * 200000, 'nested too deeply'),
    ({}, '{"format": ', 'not valid JSON'),
    ({}, '[1, 2]', 'must hold a JSON object'),
    ({}, ' ' * (2**20 + 1), 'file too large'),
])
def test_row4_config_values(tmp_path, model, changes, text, msg):
    m = tamper(model, tmp_path/'m', text=text, **changes)
    with pytest.raises(ValueError) as e: load_model(m)
    assert msg in str(e.value) and '\n' not in str(e.value), str(e.value)


def test_row4_weights_nan_and_bad_header(tmp_path, model):
    from safetensors.torch import load_file, save_file
    m = tamper(model, tmp_path/'nan')
    sd = load_file(str(m/'model.safetensors')); k = next(iter(sd)); sd[k][...] = float('nan')
    save_file(sd, str(m/'model.safetensors'))
    with pytest.raises(ValueError, match='NaN or infinite values'): load_model(m)
    m2 = tamper(model, tmp_path/'trunc')
    raw = (m2/'model.safetensors').read_bytes(); (m2/'model.safetensors').write_bytes(raw[:len(raw) // 2])
    with pytest.raises(ValueError, match='invalid entry in the header'): load_model(m2)
    (m2/'model.safetensors').write_bytes((10**12).to_bytes(8, 'little') + b'{}')
    with pytest.raises(ValueError, match='not a safetensors file'): load_model(m2)


# ---- rows 5 and 6: wrong arguments to artnb-predict: exit 2, one line, before any work
def test_rows5_6_predict_usage_errors(tmp_path, model):
    (tmp_path/'imgs').mkdir(); picture(0).save(tmp_path/'imgs'/'a.jpg')
    pk = tmp_path/'pickled'; pk.mkdir(); (pk/'model.pkl').write_bytes(b'\x80\x04N.')
    (tmp_path/'empty').mkdir()
    out = tmp_path/'p.csv'
    cases = {   # each a subprocess (~8 s each to import torch/fastai): the exit status and stderr of the real command
        'missing input': ([model, tmp_path/'nope.jpg'], 'input path(s) do not exist'),
        'pickle only': ([pk, tmp_path/'imgs'], 'found model.pkl: pickles are never loaded'),
    }
    more = {   # the rest of the table in-process (same code path, exit status from UsageError.code)
        'bs -1': (dict(paths=[tmp_path/'imgs'], bs=-1), '--bs must be an integer >= 1'),
        'bs 0': (dict(paths=[tmp_path/'imgs'], bs=0), '--bs must be an integer >= 1'),
        'missing model': (dict(model_dir=tmp_path/'no_model', paths=[tmp_path/'imgs']), 'does not exist: give the folder save_model wrote'),
        'out folder missing': (dict(paths=[tmp_path/'imgs'], out=tmp_path/'nodir'/'p.csv'), 'does not exist'),
        'topk 0': (dict(paths=[tmp_path/'imgs'], topk=0), '--topk must be an integer >= 1'),
        'out is a folder': (dict(paths=[tmp_path/'imgs'], out=tmp_path), 'is a folder'),
        'no images': (dict(paths=[tmp_path/'empty']), 'no image files'),
    }
    for k, (kw, msg) in more.items():
        with pytest.raises(UsageError) as e: predict_main(**{'model_dir': model, 'out': out, **kw})
        assert e.value.code == 2 and msg in str(e.value) and str(e.value).startswith('artnb-predict: '), (k, str(e.value))
    with ThreadPoolExecutor(2) as ex:
        res = dict(zip(cases, ex.map(lambda c: cli('artnb-predict', *c[0], *([] if '--out' in c[0] else ['--out', out])),
                                     cases.values())))
    for k, (rc, so, se) in res.items():
        assert rc == 2, (k, rc, se)
        assert cases[k][1] in se and se.startswith('artnb-predict: ') and len(se.strip().splitlines()) == 1 and 'Traceback' not in se, (k, se)
        assert 'cannot read' not in se and 'predicted' not in se, (k, se)   # refused before any work
    assert not out.exists()
    with pytest.raises(Exception, match='do not exist'): predict_files(model, [tmp_path/'nope.jpg'], out=None, progress=False)


# ---- row 7: a file name that is not UTF-8
def test_row7_non_utf8_name(tmp_path, model):
    d = dataset(tmp_path/'ds')
    name = os.fsencode(d/'a') + b'/x_\xff.jpg'
    with open(name, 'wb') as f: picture(7).save(f, 'JPEG')
    out = tmp_path/'items.csv'
    rc, so, se = cli('artnb-scan', d, '--out', out)
    assert rc == 0 and 'Traceback' not in se, se
    text = out.read_text(encoding='utf-8')
    assert 'x_\\udcff.jpg' in text and len(pd.read_csv(out)) == 7     # escaped, complete
    pout = tmp_path/'preds.csv'
    rc, so, se = cli('artnb-predict', model, d, '--out', pout)
    assert rc == 0 and 'Traceback' not in se, se
    df = pd.read_csv(pout, keep_default_na=False)
    assert len(df) == 7 and (df.error == '').all() and df.path.str.contains('x_\\udcff', regex=False).sum() == 1


# ---- row 8: a symlink loop
def test_row8_symlink_loop(tmp_path):
    d = dataset(tmp_path/'ds')
    os.symlink(d/'a'/'b.jpg', d/'a'/'a.jpg'); os.symlink(d/'a'/'a.jpg', d/'a'/'b.jpg')
    good, bad = validate(scan(d), verbose=False)
    assert bad.reason.tolist() == ['symlink loop', 'symlink loop'] and len(good) == 6
    rc, so, se = cli('artnb-scan', d)
    assert rc == 1 and 'Traceback' not in se and so.count('symlink loop: /') == 2, se


# ---- row 9: GIFs and broken symlinks; rows in input order
def test_row9_gif_broken_symlink_and_order(tmp_path, model):
    assert '.gif' in IMAGE_EXTS
    d = dataset(tmp_path/'ds')
    picture(5).save(d/'a'/'anim.gif')
    os.symlink(tmp_path/'gone.jpg', d/'b'/'dangling.jpg')
    good, bad = validate(scan(d), verbose=False)
    assert any(p.endswith('anim.gif') for p in good.path)
    assert dict(zip(bad.path.map(lambda p: Path(p).name), bad.reason)) == {'dangling.jpg': 'broken symlink'}
    files = expand_paths([d/'b'/'2.jpg', d, d/'a'/'0.jpg'])
    assert files[0] == d/'b'/'2.jpg' and files[-1] == d/'a'/'0.jpg' and d/'a'/'anim.gif' in files and d/'b'/'dangling.jpg' in files
    out = tmp_path/'p.csv'
    rc, so, se = cli('artnb-predict', model, d/'b'/'2.jpg', d, d/'a'/'0.jpg', '--out', out, '--bs', '3')
    assert rc == 1 and 'dangling.jpg: broken symlink' in se, se
    df = pd.read_csv(out, keep_default_na=False)
    assert [Path(p) for p in df.path] == files                        # input order, across batches and errors
    assert df.set_index(df.path.map(lambda p: Path(p).name)).loc['anim.gif', 'error'] == ''


# ---- row 10: invalid artnb-scan options
def test_row10_scan_usage_errors(tmp_path):
    d = dataset(tmp_path/'ds')
    cases = {('--max-dist', '-1'): '--max-dist must be an integer >= 0', ('--min-side', '-5'): '--min-side must be an integer >= 1'}
    with ThreadPoolExecutor(2) as ex:
        res = dict(zip(cases, ex.map(lambda a: cli('artnb-scan', d, *a), cases)))
    for kw, msg in [(dict(workers=-2), '--workers must be'), (dict(layout='imagenet'), 'unknown layout'),
                    (dict(out=tmp_path/'no'/'x.csv'), 'does not exist'), (dict(root=tmp_path/'nothing'), 'does not exist')]:
        with pytest.raises(UsageError) as e: scan_main(**{'root': d, **kw})
        assert e.value.code == 2 and msg in str(e.value), str(e.value)
    for k, (rc, so, se) in res.items():
        assert rc == 2 and cases[k] in se and len(se.strip().splitlines()) == 1, (k, rc, se)
        assert 'layout' not in so, k                                      # checked before any scanning


# ---- the classic bad images, through validate and artnb-predict
def test_classic_bad_images(tmp_path, model):
    d = tmp_path/'fx'
    expected = write_bad_fixture(d)
    good, bad = validate(scan(d), verbose=False)
    reasons = {Path(p).relative_to(d.resolve()).as_posix(): r for p, r in zip(bad.path, bad.reason)}
    for k, v in expected.items():
        if v == 'ok': assert k not in reasons, k
        else: assert reasons[k].startswith(v), (k, reasons[k])
    out = tmp_path/'p.csv'
    rc, so, se = cli('artnb-predict', model, d, '--out', out)
    assert rc == 1, se
    df = pd.read_csv(out, keep_default_na=False)
    err = {Path(p).relative_to(d).as_posix(): e for p, e in zip(df.path, df.error)}
    for k, v in expected.items():
        if k.endswith('.txt'): assert k not in err; continue          # not an image suffix: not an input of artnb-predict
        v = '' if v == 'ok' else v     # the 1x1 PNG too: prediction refuses images under artnb.core.MIN_SIDE (8 px)
        assert err[k].startswith(v) and (v or err[k] == ''), (k, err[k])
        if v: assert f'{k}: {err[k]}' in se


# ---- beyond the table: CSVs that make no sense
@pytest.mark.parametrize('text,msg', [
    ('', 'is empty'),
    ('path,label\n', 'has a header but no rows'),
    ('file,class\na.jpg,x\n', "lacks column(s) ['label', 'path']"),
    ('path,label\na.jpg,\n', "label '' is empty"),
    ('path,label\n../../etc/passwd,x\n', "points outside the CSV's folder"),
    ('path,label\na.jpg,x\na.jpg,y\n', 'listed twice with different labels'),
    ('path,label,split\na.jpg,x,banana\n', "split 'banana' is not one of"),
    (b'path,label\na\xff.jpg,x\n', 'not UTF-8 text'),
    ('path,label\n"a.jpg,x\n', 'not a readable CSV'),
    ('path,label\na.jpg,x,extra\nb.jpg,y\n', 'line 2: 3 fields but the header has 2'),      # round 3, row 19: the line at fault
    ('path,label\nb.jpg,y\n\na.jpg,x,extra\n', 'line 4: 3 fields but the header has 2'),      # a blank line counted
    ('path,label\n\n,x\n', 'line 3: empty path'),
])
def test_csv_that_makes_no_sense(tmp_path, text, msg):
    p = tmp_path/'items.csv'
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ValueError) as e: scan(p)
    assert msg in str(e.value) and '\n' not in str(e.value), str(e.value)


def test_csv_scan_main_one_line(tmp_path):
    p = tmp_path/'items.csv'; p.write_text('path,label\n')
    with pytest.raises(CliError) as e: scan_main(p)
    assert getattr(e.value, 'code', 1) == 1 and 'has a header but no rows' in str(e.value) and '\n' not in str(e.value)


def test_csv_missing_files_reported(tmp_path):
    picture(0).save(tmp_path/'a.jpg'); picture(1).save(tmp_path/'b.jpg')
    (tmp_path/'items.csv').write_text(f'path,label\na.jpg,x\nb.jpg,y\nmissing.jpg,x\n{tmp_path}/abs.jpg,y\n')
    good, bad = validate(scan(tmp_path/'items.csv'), verbose=False)
    assert len(good) == 2 and bad.reason.tolist() == ['missing (no such file)'] * 2


# ---- atomic output, size cap, every reader shares the limits
def test_atomic_csv_never_truncated(tmp_path):
    out = tmp_path/'o.csv'
    write_csv_atomic(pd.DataFrame({'path': ['a'], 'x': [1]}), out)
    before = out.read_text()
    with pytest.raises(KeyError): write_csv_atomic(pd.DataFrame({'path': ['b']}), out, columns=['nope'])
    assert out.read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == ['o.csv']


def test_every_reader_has_the_limits(tmp_path, model):
    from artnb.validate import _png_header_only
    from artnb.data import ArtImage
    bomb = tmp_path/'bomb.png'; bomb.write_bytes(_png_header_only(30000, 30000))
    t0 = time.time()
    for f in (inspect_image, load_rgb, ArtImage.create, load_model(model).preprocess, read_regular_file):
        if f is read_regular_file: f(bomb); continue                        # reading bytes is fine; decoding is refused
        with pytest.raises(BadImage, match='decompression bomb'): f(bomb)
    items = pd.DataFrame({'path': [str(bomb)], 'label': ['a']})
    with pytest.raises(ValueError, match='decompression bomb'): cache_resized(items, tmp_path/'cache', verbose=False)
    with pytest.raises(BadImage, match='file too large'): read_regular_file(bomb, max_bytes=10)
    assert time.time() - t0 < 10


def test_check_config_roundtrip(model):
    cfg = json.loads((model/'config.json').read_text())
    assert check_config(cfg) is cfg
    assert isinstance(load_model(model), Predictor)


def test_metrics_json_with_non_utf8_file_name(tmp_path):
    "A skipped file whose name is not UTF-8 survives into metrics.json (escaped) instead of crashing the write"
    from artnb.analysis import save_metrics, load_metrics
    p = save_metrics(tmp_path, '06_backbones', 'S3', 'real', str(tmp_path), {'epochs': 1},
                     {'accuracy': 0.5}, data_info={'bad_files': [{'file': 'x_\udcff.jpg', 'reason': 'not an image'}]})
    assert load_metrics(p)['data']['bad_files'][0]['file'] == 'x_\udcff.jpg'


# ==== round 3 (issue 20): no output ever replaces an input, nothing hangs, every refusal one line with its exit code
import hashlib, signal, stat


def digest(*paths):
    "{path: sha256} of every regular file at or under `paths` (FIFOs and devices are never opened): the inputs' state"
    out = {}
    for p in map(Path, paths):
        for f in ([p] if not p.is_dir() else sorted(q for q in p.rglob('*'))):
            try: st = os.lstat(f)
            except OSError: continue
            if stat.S_ISREG(st.st_mode): out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode): out[str(f)] = 'link -> ' + os.readlink(f)
    return out


def refused(fn, *words):
    "The UsageError `fn()` raises: exit status 2, one line, naming `words`"
    with pytest.raises(UsageError) as e: fn()
    msg = str(e.value)
    assert e.value.code == 2 and '\n' not in msg and 'Traceback' not in msg and all(w in msg for w in words), msg
    return msg


@pytest.fixture
def r3(tmp_path, model):
    "A dataset, a copy of the model folder with its items.csv, a FIFO, a symlink to stdout; the model is never loaded"
    d = dataset(tmp_path/'ds')
    m = tmp_path/'m'; shutil.copytree(model, m)
    pd.DataFrame({'path': [str(p) for p in sorted(d.rglob('*.jpg'))], 'label': 'a'}).to_csv(m/'items.csv', index=False)
    (tmp_path/'ds.csv').write_text(f'path,label\n{d}/a/0.jpg,a\n{d}/b/0.jpg,b\n')
    os.mkfifo(tmp_path/'fifo.csv'); os.symlink('/proc/self/fd/1', tmp_path/'link.csv')
    return tmp_path, d, m


def no_model_load(monkeypatch):
    "Make loading a model an error: a refusal must come before it"
    def boom(*a, **k): raise AssertionError('the model was loaded before the outputs were checked')
    import artnb.predict, artnb.evaluate, artnb.export, artnb.inference
    for mod in (artnb.inference, artnb.evaluate, artnb.export): monkeypatch.setattr(mod, 'load_model', boom)
    monkeypatch.setattr(artnb.predict, 'load_onnx', boom)   # artnb-predict's ONNX path; its torch path imports artnb.inference's


def test_r3_outputs_never_replace_inputs(r3, monkeypatch):
    "Row 1, 2, 9, 10: every CLI's output checked before any work; each input's hash unchanged"
    from artnb.evaluate import eval_main
    from artnb.export import export_main
    from artnb.training import train_model
    import artnb.training
    t, d, m = r3
    no_model_load(monkeypatch)
    monkeypatch.setattr(artnb.training, 'experiment_data', lambda *a, **k: pytest.fail('the data was read'))
    img = d/'a'/'0.jpg'
    before = digest(t)
    long = t/('x' * 241 + '.csv')   # a 245-byte name: its temp sibling would pass the 255-byte limit
    cases = [
        (lambda: predict_main(m, [img], out=img), 'is the input'),
        (lambda: predict_main(m, [d], out=img), 'is a file in the input folder'),
        (lambda: predict_main(m, [img], out=m/'config.json'), 'inside the model folder'),
        (lambda: predict_main(m, [img], out=t/'link.csv'), 'is a symlink'),
        (lambda: predict_main(m, [img], out=t/'fifo.csv'), 'a FIFO (named pipe), not a regular file'),
        (lambda: predict_main(m, [img], out='/proc/x.csv'), 'in /proc'),
        (lambda: predict_main(m, [img], out='/sys/x.csv'), 'in /sys'),
        (lambda: predict_main(m, [img], out='/dev/stdout'), 'is a symlink'),
        (lambda: predict_main(m, [img], out=long), 'the name is 245 bytes'),
        (lambda: predict_main(m, [img], out=t/'p.csv', cam=d), 'holds the input'),
        (lambda: predict_main(m, [img], out=t/'p.csv', cam=m), 'is the model folder'),
        (lambda: scan_main(t/'ds.csv', out=t/'ds.csv'), 'is the input'),
        (lambda: scan_main(d, cache=img), 'is a file in the input folder'),
        (lambda: scan_main(d, out=t/'link.csv'), 'is a symlink'),
        (lambda: scan_main(d, out=t/'fifo.csv'), 'FIFO'),
        (lambda: scan_main(d, out='/proc/x.csv'), 'in /proc'),
        (lambda: scan_main(d, out=long), 'the name is 245 bytes'),
        (lambda: scan_main(d, out=t/'c.csv', cache=t/'c.csv'), 'is the input'),
        (lambda: eval_main(m, m/'items.csv', out=m), 'is the model folder'),
        (lambda: eval_main(m, m/'items.csv', out=m/'eval'), 'inside the model folder'),
        (lambda: eval_main(m, t/'ds.csv', out=t/'link.csv'), 'is a symlink'),
        (lambda: train_model(m/'items.csv', m), 'its items.csv would replace the input'),
        (lambda: train_model(d, d), 'is the input'),
    ]
    for fn, words in cases: refused(fn, words)
    os.symlink('/proc/self/fd/1', m/'onnx.json')
    refused(lambda: export_main(m), 'onnx.json is a symlink')
    os.unlink(m/'onnx.json')
    assert digest(t) == before
    assert sorted(p.name for p in t.iterdir()) == ['ds', 'ds.csv', 'fifo.csv', 'link.csv', 'm']   # no temp file, no probe left


def test_r3_cache_is_data_not_trust(tmp_path, capsys):
    "Rows 3 and 4: a FIFO cache is refused at once (no hang); a cache with wrong content is read record by record"
    d = dataset(tmp_path/'ds')
    os.mkfifo(tmp_path/'fifo.jsonl')
    t0 = time.time()
    refused(lambda: scan_main(d, cache=tmp_path/'fifo.jsonl'), 'FIFO')
    with pytest.raises(ValueError, match='not a regular file'): validate(scan(d), cache=tmp_path/'fifo.jsonl', verbose=False)
    assert time.time() - t0 < 5
    ref = validate(scan(d), verbose=False)[0]
    good = {"k": "x", "m": None, "r": "not an image"}
    for junk in ['{}', '[]', '[1, 2, 3]', '"text"', '{"k": 1, "m": null, "r": "x"}', '{"k": "x", "m": {"width": "a"}, "r": ""}',
                 '{"k": "x", "m": [1], "r": ""}', '\x00\xff binary', '[' * 50000, json.dumps({**good, 'more': 1})]:
        c = tmp_path/'c.jsonl'; c.write_text(junk + '\n' + json.dumps(good) + '\n')
        before = c.read_bytes()
        g, b = validate(scan(d), cache=c, verbose=False)
        assert len(g) == len(ref) and len(b) == 0, junk
        assert 'validate: 1 unusable lines in the cache' in capsys.readouterr().err, junk
        assert c.read_bytes().startswith(before)   # appended to, never rewritten
    assert scan_main(d, cache=c) == 0


def test_r3_arguments_before_data(tmp_path, monkeypatch):
    "Rows 11 and 17: --lr, --seed and --port refused (exit 2) before any data is read"
    import artnb.training
    from artnb.training import train_model
    from artnb.demo_app import demo_cli
    d = dataset(tmp_path/'ds')
    monkeypatch.setattr(artnb.training, 'experiment_data', lambda *a, **k: pytest.fail('the data was read'))
    for kw, words in [(dict(lr=float('nan')), '--lr must be a number'), (dict(lr=-1.), '--lr must be a number'),
                      (dict(lr=float('inf')), '--lr must be a number'), (dict(seed=-1), '--seed must be an integer >= 0'),
                      (dict(seed=99999999999), '--seed must be an integer'), (dict(cv_folds=1), '--cv-folds')]:
        refused(lambda: train_model(d, tmp_path/'out', **kw), words)
    assert not (tmp_path/'out').exists()
    for port in (0, 99999, -1):
        with pytest.raises(ValueError, match='--port must be an integer from 1 to 65535'): demo_cli(model_dir=str(tmp_path), port=port, dry_run=True)


def test_r3_exit_paths(tmp_path):
    "Rows 16 and 21, the real exit paths: stdout full or closed -> a quiet non-zero exit, Ctrl-C -> one line and 130; no traceback"
    d = dataset(tmp_path/'ds')
    exe = [str(BIN/'artnb-scan'), str(d)]
    def full():
        with open('/dev/full', 'w') as f: return subprocess.run(exe, stdout=f, stderr=subprocess.PIPE, text=True, env=ENV, timeout=TIMEOUT)
    def closed():
        p = subprocess.Popen(exe, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        p.stdout.close(); err = p.stderr.read(); p.wait(TIMEOUT)
        return subprocess.CompletedProcess(exe, p.returncode, '', err)
    with ThreadPoolExecutor(2) as ex: r_full, r_closed = ex.map(lambda f: f(), (full, closed))
    assert r_full.returncode == 1 and len(r_full.stderr.strip().splitlines()) == 1 and 'No space left' in r_full.stderr, r_full.stderr
    assert r_closed.returncode == 1 and r_closed.stderr == '', r_closed.stderr
    # Ctrl-C in the middle of the work: a folder whose scan takes several seconds (400 copies of one picture; about 13 ms
    # each here), so that 1.5 s after the start the command is still running on a fast, idle machine or a slow, busy one
    big = tmp_path/'big'
    for c in ('a', 'b'):
        (big/c).mkdir(parents=True)
        for i in range(200): shutil.copyfile(d/c/'0.jpg', big/c/f'{i}.jpg')
    # The command starts with Ctrl-C's default action, as from a terminal: a process that inherits SIGINT *ignored* (a
    # background job of a non-interactive shell, `nohup`, and one of the suite's xdist workers after an earlier test) is
    # rightly deaf to it, and scans on to exit 0 (seen twice with `pytest -n 2`)
    p = subprocess.Popen([str(BIN/'artnb-scan'), str(big)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(1.5)
    assert p.poll() is None, "artnb-scan ended before it could be interrupted: give it a larger folder"
    p.send_signal(signal.SIGINT)
    err = p.communicate(timeout=TIMEOUT)[1]
    assert p.returncode == 130 and err.strip() == 'artnb-scan: interrupted', err


# ---- round 3, rows 5-8, 13-15, 18: model folders, image sizes, NaN pixels, names and warnings
def in_process(fn):
    "(exit status, stderr lines) of a CLI's main function run in-process: a UsageError's code (2), else what it returns"
    try: return fn(), None
    except UsageError as e:
        assert '\n' not in str(e) and 'Traceback' not in str(e), str(e)
        return e.code, str(e)


def st_rewrite(src, dst, edit=None, tail=b''):
    "Copy of model folder `src` at `dst` whose model.safetensors header is changed by `edit(header)` and `tail` appended"
    shutil.copytree(src, dst)
    f = dst/'model.safetensors'; raw = f.read_bytes()
    n = int.from_bytes(raw[:8], 'little'); hdr = json.loads(raw[8:8 + n])
    if edit: edit(hdr)
    h = json.dumps(hdr).encode()
    f.write_bytes(len(h).to_bytes(8, 'little') + h + raw[8 + n:] + tail)
    return dst


def _overlap(h):
    "Point the last tensor at the bytes of the first one of the same size (our own header check still passes)"
    ts = [(k, v) for k, v in h.items() if k != '__metadata__']
    k, v = ts[-1]; size = v['data_offsets'][1] - v['data_offsets'][0]
    v['data_offsets'] = [0, size]


@pytest.mark.parametrize('edit,tail', [(_overlap, b''), (None, b'\0' * 8), (lambda h: h.update(__metadata__=['pt']), b''),
                                       (lambda h: h.update(__metadata__={'format': 1}), b'')],
                         ids=['overlapping offsets', 'trailing bytes', '__metadata__ a list', '__metadata__ values not strings'])
def test_r3_row5_safetensors_the_library_rejects(tmp_path, model, edit, tail):
    "Row 5: parsed by the safetensors library inside the validation step: one line, ValueError, the CLI's exit 2"
    m = st_rewrite(model, tmp_path/'m', edit, tail)
    before = digest(m)
    with pytest.raises(ValueError) as e: load_model(m)
    assert 'model.safetensors is not a valid safetensors file (' in str(e.value) and '\n' not in str(e.value), str(e.value)
    picture(0).save(tmp_path/'x.jpg')
    rc, msg = in_process(lambda: predict_main(m, [tmp_path/'x.jpg'], out=tmp_path/'p.csv'))
    assert rc == 2 and msg.startswith('artnb-predict: model ') and 'not a valid safetensors file' in msg, msg
    assert digest(m) == before and not (tmp_path/'p.csv').exists()


def test_r3_row8_weights_must_be_floating_point(tmp_path, model):
    "Row 8: int8 / bool weights refused (they would be cast silently); BatchNorm's int64 counter and float16 weights are fine"
    from safetensors.torch import save_file
    from artnb.learner import build_model
    import torch
    cfg = json.loads((model/'config.json').read_text())
    sd = build_model('resnet18', cfg['head'], len(cfg['classes']), cfg['size'], head_kw=cfg['head_kw']).state_dict()   # with BatchNorm
    assert any(v.dtype == torch.int64 for v in sd.values())   # num_batches_tracked: the model's own dtype
    def weights(name, conv):
        m = tamper(model, tmp_path/name, arch='resnet18')
        save_file({k: conv(v).contiguous() for k, v in sd.items()}, str(m/'model.safetensors')); return m
    assert isinstance(load_model(weights('ok', lambda v: v)), Predictor)
    assert isinstance(load_model(weights('f16', lambda v: v.half() if v.is_floating_point() else v)), Predictor)
    for name, conv, words in [('i8', lambda v: v.to(torch.int8) if v.is_floating_point() else v, 'I8 values where the model holds F32'),
                              ('bool', lambda v: v.bool(), 'BOOL values where the model holds F32'),
                              ('counter', lambda v: v if v.is_floating_point() else v.float(), 'F32 values where the model holds I64')]:
        m = weights(name, conv)
        before = digest(m)
        with pytest.raises(ValueError) as e: load_model(m)
        assert words in str(e.value) and 'weights must be floating point' in str(e.value) and '\n' not in str(e.value), (name, str(e.value))
        assert digest(m) == before
    picture(0).save(tmp_path/'x.jpg')
    rc, msg = in_process(lambda: predict_main(tmp_path/'bool', [tmp_path/'x.jpg'], out=tmp_path/'p.csv'))
    assert rc == 2 and msg.startswith('artnb-predict: model ') and 'BOOL values where the model holds F32' in msg, msg
    assert not (tmp_path/'p.csv').exists()


def toy_graph(n_out=2, size=(32, 32), batch='batch'):
    "A tiny ONNX classifier: global average pool -> [batch, 3] @ W -> [batch, n_out]"
    from onnx import helper, TensorProto
    x = helper.make_tensor_value_info('pixels', TensorProto.FLOAT, [batch, 3, *size])
    y = helper.make_tensor_value_info('logits', TensorProto.FLOAT, [batch, n_out])
    W = helper.make_tensor('W', TensorProto.FLOAT, [3, n_out], [0.1] * (3 * n_out))
    nodes = [helper.make_node('GlobalAveragePool', ['pixels'], ['p']), helper.make_node('Flatten', ['p'], ['f']), helper.make_node('MatMul', ['f', 'W'], ['logits'])]
    g = helper.make_model(helper.make_graph(nodes, 'toy', [x], [y], [W]), opset_imports=[helper.make_opsetid('', 17)]); g.ir_version = 9
    return g.SerializeToString()


@pytest.fixture(scope='module')
def onnx_folder(onnx_model):
    "The module's model with its model.onnx + onnx.json, as artnb-export-onnx writes them (tests/conftest.py's shared export)"
    return onnx_model


def test_r3_rows6_7_broken_or_swapped_onnx(tmp_path, onnx_folder):
    "Rows 6 and 7: random bytes, 7 outputs for 2 classes, a wrong input size, a swapped model.onnx, an onnx.json without the pin: one line, exit 2"
    meta = json.loads((onnx_folder/'onnx.json').read_text())
    assert meta['onnx_sha256'] == hashlib.sha256((onnx_folder/'model.onnx').read_bytes()).hexdigest()
    picture(0).save(tmp_path/'x.jpg')
    ok = load_model(onnx_folder, backend='onnx').predict([tmp_path/'x.jpg'])
    assert np.isfinite(ok.probs).all()

    def folder(name, data, pin=True, **meta_changes):
        d = tmp_path/name; shutil.copytree(onnx_folder, d)
        (d/'model.onnx').write_bytes(data)
        mj = dict(meta, **({'onnx_sha256': hashlib.sha256(data).hexdigest()} if pin else {}), **meta_changes)
        (d/'onnx.json').write_text(json.dumps({k: v for k, v in mj.items() if v is not None}))
        return d
    cases = [
        (folder('random', os.urandom(4096)), 'is not a model onnxruntime can open ('),
        (folder('seven', toy_graph(7)), "gives tensor(float) ['batch', 7], not [batch, 2] logits for the 2 classes"),
        (folder('input', toy_graph(2, size=(16, 16))), 'not a float32 [batch, 3, 32, 32] batch as config.json says'),
        (folder('swapped', toy_graph(2), pin=False), 'its sha256 differs from the one onnx.json pins'),   # another network, onnx.json unchanged
        (folder('unpinned', (onnx_folder/'model.onnx').read_bytes(), pin=False, onnx_sha256=None), "does not pin model.onnx's own sha256"),
    ]
    from artnb.runtime import OnnxPredictor
    assert isinstance(load_model(folder('toy', toy_graph(2)), backend='onnx'), OnnxPredictor)   # a pinned graph of the right shape opens
    for d, words in cases:
        before = digest(d)
        with pytest.raises(ValueError) as e: load_model(d, backend='onnx')
        assert words in str(e.value) and '\n' not in str(e.value), (d.name, str(e.value))
        rc, msg = in_process(lambda: predict_main(d, [tmp_path/'x.jpg'], out=tmp_path/'p.csv', backend='onnx'))
        assert rc == 2 and msg.startswith(f'artnb-predict: model {d}: ') and words in msg, (d.name, msg)
        assert digest(d) == before and not (tmp_path/'p.csv').exists()


def test_r3_row13_one_size_limit_for_every_reader(tmp_path, model, capsys):
    "Row 13: a 1x1, a 1x100000 and a 10x1000 image to artnb-predict: reported per file, exit 1; a 0x0 PIL image to Predictor.predict: BadImage"
    from artnb.core import MIN_SIDE, MAX_ASPECT, check_size
    d = tmp_path/'in'; d.mkdir()
    Image.new('RGB', (1, 1)).save(d/'dot.png'); Image.new('L', (1, 100000)).save(d/'line.png')
    Image.new('RGB', (10, 1000)).save(d/'strip.png'); picture(3).save(d/'ok.jpg')
    Image.new('RGB', (MIN_SIDE, MIN_SIDE * MAX_ASPECT)).save(d/'edge.png')   # the smallest and longest accepted
    before = digest(d)
    out = tmp_path/'p.csv'
    assert predict_main(model, [d], out=out) == 1
    err = capsys.readouterr().err.strip().splitlines()
    df = pd.read_csv(out, keep_default_na=False)
    got = dict(zip(df.path.map(lambda p: Path(p).name), df.error))
    assert got == {'dot.png': 'too small (1x1 < 8 px)', 'edge.png': '', 'line.png': 'too small (1x100000 < 8 px)',
                   'ok.jpg': '', 'strip.png': 'too elongated (10x1000: sides 100:1 > 50:1)'}, got
    assert len(err) == 4 and all(l.startswith('artnb-predict: ') for l in err), err   # one line per problem + the summary
    pred = load_model(model)
    for im, words in [(Image.new('RGB', (0, 0)), 'too small (0x0 < 8 px)'), (Image.new('RGB', (4, 300)), 'too small (4x300 < 8 px)')]:
        with pytest.raises(BadImage) as e: pred.predict([im])
        assert str(e.value) == words
    good, bad = validate(pd.DataFrame({'path': [str(d/'dot.png'), str(d/'ok.jpg')], 'label': ['a', 'b']}), verbose=False)
    assert bad.reason.tolist() == ['too small (1x1 < 32 px)']   # datasets keep their stricter curation minimum
    with pytest.raises(BadImage, match='too small'): check_size(7, 7)
    assert digest(d) == before


def test_r3_row14_nan_tiff(tmp_path, model, capsys):
    "Row 14: an all-NaN float TIFF is refused with its reason everywhere, without a RuntimeWarning"
    import warnings
    d = tmp_path/'ds'; (d/'a').mkdir(parents=True); (d/'b').mkdir()
    Image.fromarray(np.full((48, 48), np.nan, np.float32)).save(d/'a'/'nan.tif')
    for i in range(2): picture(i).save(d/'a'/f'{i}.jpg'); picture(10 + i).save(d/'b'/f'{i}.jpg')
    before = digest(d)
    with warnings.catch_warnings():
        warnings.simplefilter('error', RuntimeWarning)
        with pytest.raises(BadImage, match=r'non-finite pixel values \(2304 of 2304 NaN or infinite\)'): load_rgb(d/'a'/'nan.tif')
        good, bad = validate(scan(d), verbose=False)
        assert bad.reason.tolist() == ['non-finite pixel values (2304 of 2304 NaN or infinite)'] and len(good) == 4
        assert predict_main(model, [d/'a'], out=tmp_path/'p.csv') == 1
    assert 'nan.tif: non-finite pixel values' in capsys.readouterr().err
    assert digest(d) == before


def test_r3_row15_names_and_warnings_one_line(tmp_path, monkeypatch, capsys):
    "Row 15: a name with a newline or a terminal escape is printed escaped; a Python warning in a CLI is one line"
    import warnings
    from artnb.core import escape_stdio, one_line, printable
    monkeypatch.setattr(warnings, 'showwarning', warnings.showwarning)   # restored after the test
    escape_stdio()
    with warnings.catch_warnings():
        warnings.simplefilter('always')
        warnings.warn('a warning\nover two lines', UserWarning)
        warnings.warn_explicit('from a library', FutureWarning, '/x/lib.py', 7)
    err = capsys.readouterr().err
    assert err.splitlines() == [f'{Path(sys.argv[0]).name}: UserWarning: a warning / over two lines',
                                f'{Path(sys.argv[0]).name}: FutureWarning: from a library'], err
    d = tmp_path/'ds'; (d/'a').mkdir(parents=True)
    bad = d/'a'/'x\ny\x1b[2J.jpg'; bad.write_text('not an image')
    before = digest(d)
    with pytest.raises(BadImage) as e: load_rgb(bad)
    assert str(e.value) == f'{d}/a/x\\ny\\x1b[2J.jpg: not an image' and printable(bad) == str(e.value).split(': ')[0]
    assert one_line(f'cannot read {bad}') == f'cannot read {d}/a/x / y\\x1b[2J.jpg'
    assert digest(d) == before


def test_r3_row15_cli_prints_names_escaped(tmp_path, model, capsys):
    "Row 15 through the commands: one line per unreadable file whatever its name"
    d = tmp_path/'ds'; dataset(d)
    (d/'a'/'x\ny.jpg').write_text('not an image')
    assert predict_main(model, [d], out=tmp_path/'p.csv') == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and 'x\\ny.jpg: not an image' in err[0], err
    assert scan_main(d) == 1
    out = capsys.readouterr().out
    assert any(l.strip() == f'not an image: {d}/a/x\\ny.jpg' for l in out.splitlines()), out


def test_r3_row18_unknown_config_keys(tmp_path, model):
    "Row 18: unknown top-level or resize keys are refused (exactly what save_model writes is known)"
    from artnb.modelfile import KNOWN_KEYS, RESIZE_KEYS
    cfg = json.loads((model/'config.json').read_text())
    assert set(cfg) <= KNOWN_KEYS and set(cfg['resize']) <= set(RESIZE_KEYS)
    picture(0).save(tmp_path/'x.jpg')
    for name, changes, words in [('top', dict(evil=1), "does not know: ['evil']"), ('typo', dict(temprature=2.0), "['temprature']"),
                                 ('resize', dict(resize=dict(cfg['resize'], crop_pct=0.9)), "resize has key(s) this artnb does not know: ['crop_pct']"),
                                 ('opt', dict(opt=['adam']), 'opt must be a short string'), ('groups', dict(n_groups=-1), 'n_groups must be')]:
        m = tamper(model, tmp_path/name, **changes)
        before = digest(m)
        with pytest.raises(ValueError) as e: load_model(m)
        assert words in str(e.value) and '\n' not in str(e.value), (name, str(e.value))
        rc, msg = in_process(lambda: predict_main(m, [tmp_path/'x.jpg'], out=tmp_path/'p.csv'))
        assert rc == 2 and words in msg, msg
        assert digest(m) == before


def test_r3_row12_train_data_problems_one_line(tmp_path, synth):
    "Row 12: data that cannot make the model asked for (more folds than images, an unknown target, one class) -> one line, exit 1, no traceback"
    d = synth.root   # the suite's shared tiny dataset: 8 images per class
    r = subprocess.run([str(BIN/'artnb-train'), str(d), str(tmp_path/'m'), '--arch', 'simple_cnn', '--no-pretrained', '--img-size', '32',
                        '--cv-folds', '50'], capture_output=True, text=True, timeout=300)
    err = [l for l in r.stderr.strip().splitlines() if l.strip()]
    assert r.returncode == 1 and len(err) == 1 and 'Traceback' not in r.stderr, r.stderr[-2000:]
    assert err[0].startswith('artnb-train: 50-fold CV needs at least 50 images per class'), err
    assert not (tmp_path/'m'/'model.safetensors').exists()
