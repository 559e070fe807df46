"Fast tests of artnb.synth: every layout's files, determinism, the CLI, refusing foreign folders (SYNTHETIC DATA)"
import hashlib, json, os, subprocess, sys
from pathlib import Path

import pytest
from PIL import Image

from artnb.synth import PAINTERS, ARTBENCH_STYLES, paint, imitate
from artnb.synth_data import LAYOUTS, SOURCES, make_dataset, write_bad_files

REPO = Path(__file__).resolve().parents[1]
IMG_EXTS = {'.jpg', '.png'}


def images(root): return sorted(p for p in Path(root).rglob('*') if p.suffix in IMG_EXTS)
def meta(root): return json.loads((Path(root) / 'SYNTHETIC.json').read_text())
def md5s(root): return {p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest() for p in images(root)}

# files (relative to the root) that each layout must write, at n_per_class=3
EXPECTED = {
    'best-artworks': ['artists.csv', 'images/images/Synth_Monet/Synth_Monet_1.jpg', 'images/images/Synth_Van_Gogh/Synth_Van_Gogh_3.jpg'],
    'ai-artbench': ['train/baroque', 'train/AI_LD_baroque', 'train/AI_SD_baroque', 'test/ukiyo_e', 'test/AI_SD_ukiyo_e'],
    'artbench10': ['train/impressionism', 'test/surrealism'],
    'wikiart': ['style_train.csv', 'style_val.csv', 'style_class.txt', 'Impressionism', 'Ukiyo_e', 'Post_Impressionism'],
    'monet': ['target.txt', 'positive', 'negative/Synth Van Gogh', 'ai_imitation/Synth Monet', 'ai_imitation/Synth Van Gogh'],
    'sources': ['sources.json'] + list(SOURCES),
    'folder': ['Synth Monet/synth_monet_0000.jpg', 'Synth Rothko/synth_rothko_0002.jpg'],
    'csv': ['items.csv', 'Synth Monet/synth_monet_0000.jpg'],
}


@pytest.mark.parametrize('layout', LAYOUTS)
def test_layout_files(tmp_path, layout):
    root = make_dataset(layout, tmp_path / layout, n_per_class=3, size=32, seed=0)
    for rel in EXPECTED[layout]: assert (root / rel).exists(), rel
    m = meta(root)
    assert m['generator'] == 'artnb.synth' and m['layout'] == layout and 'SYNTHETIC' in m['note']
    assert m['total'] == len(images(root)) == sum(m['counts'].values()) == sum(m['folders'].values())
    for folder, n in m['folders'].items(): assert len([p for p in (root / folder).iterdir() if p.suffix in IMG_EXTS]) == n


def test_layout_details(tmp_path):
    r = make_dataset('ai-artbench', tmp_path / 'aab', 3, 32)
    assert {d.name for d in (r / 'train').iterdir()} == set(ARTBENCH_STYLES) | {f'AI_{k}_{s}' for k in ('LD', 'SD') for s in ARTBENCH_STYLES}
    assert meta(r)['counts']['AI_realism'] == 6 and meta(r)['counts']['human_realism'] == 3
    r = make_dataset('monet', tmp_path / 'monet', 3, 32)
    assert (r / 'target.txt').read_text().strip() == 'Synth Monet'
    assert {d.name for d in (r / 'ai_imitation').iterdir()} == set(PAINTERS)
    assert 'Synth Monet' not in {d.name for d in (r / 'negative').iterdir()}
    r = make_dataset('monet', tmp_path / 'kaggle', 2, 32, monet_format='kaggle')
    assert len(list((r / 'monet_jpg').glob('*.jpg'))) == 2 and len(list((r / 'photo_jpg').glob('*.jpg'))) == 2
    r = make_dataset('sources', tmp_path / 'src', 6, 32)
    assert json.loads((r / 'sources.json').read_text()) == SOURCES
    assert {p.suffix for p in (r / 'synth-sd-lofi').iterdir()} == {'.png'}
    assert len(list((r / 'synth-dalle').iterdir())) == 2
    r = make_dataset('csv', tmp_path / 'csv', 4, 32, painters=['monet', 'klimt'])
    lines = (r / 'items.csv').read_text().splitlines()
    assert lines[0] == 'path,label,source,split' and len(lines) == 9
    assert all((r / l.split(',')[0]).exists() for l in lines[1:])


def test_deterministic(tmp_path):
    a = make_dataset('wikiart', tmp_path / 'a', 2, 32, seed=3, painters=['monet', 'pollock', 'hokusai'])
    b = make_dataset('wikiart', tmp_path / 'b', 2, 32, seed=3, painters=['monet', 'pollock', 'hokusai'])
    c = make_dataset('wikiart', tmp_path / 'c', 2, 32, seed=4, painters=['monet', 'pollock', 'hokusai'])
    assert md5s(a) == md5s(b) and len(md5s(a)) == 6
    assert md5s(a) != md5s(c)
    assert paint('Synth Dali', 48, 1).tobytes() == paint('Synth Dali', 48, 1).tobytes()
    assert imitate('Synth Dali', .7, 1, size=48).tobytes() == imitate('Synth Dali', .7, 1, size=48).tobytes()


def test_refuses_foreign_folder(tmp_path):
    d = tmp_path / 'mine'; d.mkdir(); (d / 'keep.txt').write_text('x')
    with pytest.raises(FileExistsError, match='not an artnb.synth output'): make_dataset('folder', d, 2, 32)
    assert (d / 'keep.txt').read_text() == 'x' and len(list(d.iterdir())) == 1
    r = make_dataset('folder', tmp_path / 'prev', 2, 32)       # a previous synth output may be overwritten
    r = make_dataset('sources', r, 2, 32)
    assert meta(r)['layout'] == 'sources' and not (r / 'Synth Monet').exists()


def test_bad_files(tmp_path):
    bad = write_bad_files(tmp_path)
    assert bad['empty_jpg'].stat().st_size == 0
    assert Image.open(bad['cmyk_jpeg']).mode == 'CMYK' and Image.open(bad['gray16_png']).mode == 'I;16'
    with pytest.raises(Image.DecompressionBombError): Image.open(bad['bomb_png'])


def _cli():
    exe = Path(sys.executable).parent / 'artnb-synth'
    return [str(exe)] if exe.exists() else [sys.executable, '-m', 'artnb.synth_data']


def _run(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run(_cli() + list(args), capture_output=True, text=True, cwd=REPO, env=env, timeout=120)


def test_cli(tmp_path):
    dest = tmp_path / 'cli'
    p = _run('--layout', 'sources', '--dest', str(dest), '--n-per-class', '2', '--size', '32', '--seed', '1', '--ai-strength', '0.5')
    assert p.returncode == 0, p.stderr
    assert 'SYNTHETIC DATA' in p.stdout and 'synth-wga: 2' in p.stdout
    m = meta(dest)
    assert (m['layout'], m['n_per_class'], m['size'], m['seed'], m['ai_strength']) == ('sources', 2, 32, 1, .5)
    other = tmp_path / 'other'; other.mkdir(); (other / 'x.txt').write_text('x')
    p = _run('--layout', 'folder', '--dest', str(other), '--n-per-class', '2', '--size', '32')
    assert p.returncode != 0 and 'not an artnb.synth output' in p.stderr
