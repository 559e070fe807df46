"Fast checks of artnb.data on bad files, EXIF, leakage, splits, downloads and the artnb-scan CLI (temp data only)."
import io, json, os, subprocess, sys, time
from pathlib import Path
import numpy as np, pandas as pd, pytest
from PIL import Image

from artnb import synth_data
from artnb.data import scan, detect_layout, split_items, LAYOUTS
from artnb.download import download, kaggle_credentials, can_reach
from artnb.validate import validate, inspect_image, write_bad_fixture, leakage_report, bias_report
from artnb.core import sample_image, load_rgb, BadImage

ROOT = Path(__file__).resolve().parents[1]


def painting(seed, size=(160, 120)):
    "A distinct small test image per seed (`artnb.core.sample_image`)"
    return sample_image(seed, size)


@pytest.fixture
def fixture_dir(tmp_path):
    d = tmp_path/'fixture'
    return d, write_bad_fixture(d)


def test_bad_files_reported_good_kept(fixture_dir):
    d, expected = fixture_dir
    items = scan(d)
    assert detect_layout(d) == 'folder'
    good, bad = validate(items, verbose=False)          # never raises
    reasons = {Path(p).relative_to(d.resolve()).as_posix(): r for p, r in zip(bad.path, bad.reason)}
    for name, exp in expected.items():
        if exp == 'ok': assert name not in reasons, (name, reasons.get(name))
        else: assert reasons[name].startswith(exp), (name, reasons[name])
    assert reasons['b/notes.txt'] == 'not an image'      # a stray .txt in a class folder is reported, not dropped
    assert reasons['b/bomb.png'].startswith('decompression bomb (100000 x 100000 px')
    assert reasons['b/tiny.png'] == 'too small (1x1 < 32 px)'
    assert len(good) == sum(v == 'ok' for v in expected.values())
    conv = good.converted[good.converted != ''].value_counts().to_dict()
    assert conv == {'CMYK->RGB': 1, 'I;16->RGB': 1, 'RGBA->RGB': 1}
    assert set(bad.columns) >= {'path', 'reason'}


def test_exif_rotation_and_modes(fixture_dir):
    d, _ = fixture_dir
    info = inspect_image(d/'b'/'rotated.jpg')
    assert (info['width'], info['height'], info['exif_rotated']) == (40, 80, True)
    assert Image.open(d/'b'/'rotated.jpg').size == (80, 40) and load_rgb(d/'b'/'rotated.jpg').size == (40, 80)
    g16 = load_rgb(d/'b'/'gray16.png')
    raw = np.asarray(Image.open(d/'b'/'gray16.png')).astype(float)
    assert g16.mode == 'RGB' and abs(np.asarray(g16)[..., 0].mean() - raw.mean() / 257) < 1    # scaled, not clipped
    assert load_rgb(d/'b'/'cmyk.jpg').mode == 'RGB'
    with pytest.raises(BadImage, match='zero bytes'): inspect_image(d/'b'/'zero.jpg')


def test_bomb_checked_before_decoding(tmp_path):
    from artnb.validate import _png_header_only
    p = tmp_path/'bomb.png'; p.write_bytes(_png_header_only(100000, 100000))
    t0 = time.time()
    with pytest.raises(BadImage, match=r'decompression bomb \(100000 x 100000 px'): inspect_image(p)
    assert time.time() - t0 < 1
    assert Image.MAX_IMAGE_PIXELS is not None            # PIL's own limit restored


def test_leakage_near_duplicate(tmp_path):
    d = tmp_path/'ds'
    for i in range(10):
        (d/'ab'[i % 2]).mkdir(parents=True, exist_ok=True)
        painting(i).save(d/'ab'[i % 2]/f'{i}.png')
    src = Image.open(d/'a'/'0.png')
    src.resize((144, 108), Image.Resampling.LANCZOS).save(d/'a'/'0_copy.jpg', quality=80)   # q80 and 90 %
    items, _ = validate(scan(d), verbose=False)
    items['split'] = np.where(items.path.str.endswith('0_copy.jpg'), 'test', 'train')
    leaks = leakage_report(items)
    assert len(leaks) == 1
    r = leaks.iloc[0]
    assert (r.kind, Path(r.path_a).name, r.split_a, Path(r.path_b).name, r.split_b) == ('near', '0.png', 'train', '0_copy.jpg', 'test')
    assert r.distance <= 6
    items.loc[items.path.str.endswith('0_copy.jpg'), 'split'] = 'train'
    assert len(leakage_report(items)) == 0                  # same split: not a leak


def test_splits_given_and_tiny_classes():
    df = pd.DataFrame({'path': [f'/x/{i}' for i in range(103)], 'label': ['a'] * 100 + ['b'] * 2 + ['c'],
                       'split': ['test' if i % 4 == 0 else 'train' for i in range(100)] + [''] * 3})
    sp = split_items(df, (0.9, 0.1))
    assert (sp.split[:100][df.split[:100] == 'test'] == 'test').all()
    assert sp.split[:100].value_counts().to_dict() == {'train': 68, 'test': 25, 'valid': 7}
    assert sorted(sp.split[100:102]) == ['train', 'valid'] and sp.split[102] == 'train'
    assert split_items(df, (0.9, 0.1)).split.tolist() == sp.split.tolist()


def test_bias_report_flags_container():
    n = 40
    items = pd.DataFrame({'label': ['ai'] * n + ['human'] * n, 'source': 's', 'format': ['PNG'] * n + ['JPEG'] * n,
                          'mode': 'RGB', 'jpeg_quality': [np.nan] * n + [90.] * n, 'width': 256, 'height': 256,
                          'nbytes': np.random.default_rng(0).integers(10000, 20000, 2 * n), 'converted': ''})
    rep = bias_report(items)
    assert any(w.startswith('WARNING: format') for w in rep['warnings'])


def test_download_fails_fast(monkeypatch, tmp_path):
    for k in ('KAGGLE_USERNAME', 'KAGGLE_KEY', 'KAGGLE_API_TOKEN'): monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv('KAGGLE_CONFIG_DIR', str(tmp_path/'none'))
    monkeypatch.setenv('HOME', str(tmp_path))
    monkeypatch.setenv('XDG_CONFIG_HOME', str(tmp_path/'xdg'))
    assert kaggle_credentials() == ''
    t0 = time.time()
    with pytest.raises(RuntimeError, match='data_path'): download('best-artworks', tmp_path/'dl')
    assert time.time() - t0 < 2
    if can_reach('www.kaggle.com'): pytest.skip('network available: offline path not testable')
    monkeypatch.setenv('KAGGLE_USERNAME', 'x'); monkeypatch.setenv('KAGGLE_KEY', 'y')
    t0 = time.time()
    with pytest.raises(ConnectionError, match='data_path'): download('monet', tmp_path/'dl')
    assert time.time() - t0 < 2


def _cli(args, tmp_path):
    "Popen of artnb-scan (the console script when installed, else the same entry point via a script file)"
    exe = Path(sys.executable).parent/'artnb-scan'
    if exe.exists(): cmd = [str(exe)]
    else:
        s = tmp_path/'artnb_scan.py'
        s.write_text('import sys\nfrom artnb.cli import scan_cli\nsys.exit(scan_cli())\n')
        cmd = [sys.executable, str(s)]
    env = {**os.environ, 'PYTHONPATH': str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', '')}
    return subprocess.Popen(cmd + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_cli_exit_codes(fixture_dir, tmp_path):
    d, _ = fixture_dir
    (tmp_path/'empty').mkdir()
    (tmp_path/'one'/'only').mkdir(parents=True)
    for i in range(3): painting(i).save(tmp_path/'one'/'only'/f'{i}.jpg')
    out = tmp_path/'items.csv'
    procs = {'ok': _cli([d, '--out', out], tmp_path), 'empty': _cli([tmp_path/'empty'], tmp_path),
             'one': _cli([tmp_path/'one'], tmp_path)}
    res = {k: (p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for k, p in procs.items()}
    rc, so, se = res['ok']
    assert rc == 1, se                                   # usable, but the fixture's bad files are refused (listed): 1
    assert "layout 'folder'" in so and 'not an image' in so and 'decompression bomb' in so and 'leakage' in so
    assert len(pd.read_csv(out)) == 12
    rc, so, se = res['empty']
    assert rc != 0 and 'empty' in se.strip().splitlines()[-1]
    rc, so, se = res['one']
    assert rc != 0 and 'only one class' in se


def test_synth_layouts_roundtrip(tmp_path):
    "Every layout artnb.synth_data writes is detected as that layout and scanned to the counts SYNTHETIC.json records"
    layouts = list(synth_data.LAYOUTS)
    assert set(layouts) == set(LAYOUTS)
    for L in layouts:
        root = Path(synth_data.make_dataset(L, tmp_path/L, n_per_class=2, size=32))
        meta = json.loads((root/'SYNTHETIC.json').read_text())
        assert detect_layout(root) == L, L
        items = scan(root)
        assert items.synthetic.all() and (items.layout == L).all(), L
        assert items.label.value_counts().to_dict() == meta['counts'], (L, meta['counts'])
        good, bad = validate(items, min_side=16, verbose=False)
        assert len(bad) == 0, (L, bad.reason.tolist())


def test_synth_bad_files(tmp_path):
    "artnb.synth_data.write_bad_files: every odd file is handled, broken ones reported with the right reason"
    files = synth_data.write_bad_files(tmp_path/'ds'/'odd')
    (tmp_path/'ds'/'ok').mkdir()
    for i in range(2): painting(i).save(tmp_path/'ds'/'ok'/f'{i}.jpg')
    good, bad = validate(scan(tmp_path/'ds'), verbose=False)
    reason = dict(zip(bad.path, bad.reason))
    expect = {'truncated_jpeg': 'truncated or corrupt', 'text_jpg': 'not an image', 'empty_jpg': 'zero bytes',
              'tiny_png': 'too small', 'bomb_png': 'decompression bomb'}
    for name, path in files.items():
        r = reason.get(str(Path(path).resolve()), 'ok')
        assert r.startswith(expect.get(name, 'ok')), (name, r)
    if 'exif_rotated_jpeg' in files:
        row = good[good.path == str(Path(files['exif_rotated_jpeg']).resolve())].iloc[0]
        assert (row.width, row.height, row.exif_rotated) == (32, 48, True)


def test_csv_groups_give_grouped_split_and_folds(tmp_path, capsys):
    "A CSV's group column survives scanning: the single split and every k-fold keep a group on one side, and the report counts the groups"
    from artnb.core import write_image
    from artnb.experiment import experiment_data
    from artnb.recipes import kfold_splits
    rows = []
    for g in range(12):
        for t in range(4):
            f = tmp_path/f'p{g}_{t}.png'; write_image(f, seed=g * 10 + t); rows.append(dict(path=f.name, label='ab'[g % 2], group=f'painting{g}'))
    pd.DataFrame(rows).to_csv(tmp_path/'items.csv', index=False)
    d = experiment_data(str(tmp_path/'items.csv'), verbose=True)
    assert 'groups: 12 (48 images); images of one group share a split' in capsys.readouterr().out
    assert d.items.groupby('group')['split'].nunique().max() == 1 and d.summary['n_groups'] == 12
    for f in kfold_splits(d.items, k=3):
        assert f.groupby('group')['split'].nunique().max() == 1   # no painting in two folds (nor in train and valid)
    by_artist = experiment_data(str(tmp_path/'items.csv'), verbose=False, group_by='label')   # group_by names any column
    assert by_artist.items.groupby('label')['split'].nunique().max() == 1
