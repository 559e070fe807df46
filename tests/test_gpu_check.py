"""scripts/gpu_check.sh on CPU: the check with --dry-run (tiny sizes, every step, CUDA assertions skipped), and the
refusal to run the real check without a CUDA device.

The dry run here runs one of the five experiment notebooks (07, the quickest): the notebook step is the same loop for
each, and the other four run with their paper yaml and tiny overrides in tests/test_notebooks.py already (on real
photographs), so running them again would pay twice for nearly the same run. The full `scripts/gpu_check.sh --dry-run`
(all five, about 3 minutes on 2 cores) is the check to run by hand before taking the script to a GPU."""
import json, math, os, subprocess
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT/'scripts'/'gpu_check.sh'
GPU_FIGS = ROOT/'figures'/'gpu'
NOTEBOOKS = ['07_artbench']
ARCHS = ['resnet50', 'convnext_tiny', 'tf_efficientnet_lite0']

def gpu_check(*args, timeout):
    return subprocess.run(['bash', str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, HF_HUB_OFFLINE='1'))

def snapshot(d):
    "Every file under `d` with its size and mtime (None when `d` does not exist)"
    if not d.exists(): return None
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns) for p in d.rglob('*')}

def test_dry_run(tmp_path):
    before = snapshot(GPU_FIGS)
    r = gpu_check('--dry-run', '--out', str(tmp_path), '--notebooks', ','.join(NOTEBOOKS), timeout=900)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    p = tmp_path/'gpu_check.json'
    assert str(p) in r.stdout
    res = json.loads(p.read_text())
    assert res['dry_run'] is True and res['ok'] is True and res['failed'] == []
    assert 'SYNTHETIC' in res['data']
    assert {'torch', 'fastai', 'timm', 'cuda_available', 'device', 'cuda_version', 'n_gpus'} <= set(res['environment'])
    for nb in NOTEBOOKS:
        n = res['notebooks'][nb]
        assert n['ok'] and n['error'] is None and n['seconds'] > 0, (nb, n)
        assert n['params']['out_dir'] == str(tmp_path/nb) and (tmp_path/nb/'metrics.json').exists()
        assert n['params']['img_size'] == 32 and n['params']['epochs'] == 1 and 'data_path' not in n['params']
        assert n['headline'], (nb, n)
    t = res['train']
    assert t['rc'] == 0 and 'test accuracy' in t['accuracy_line'], t
    assert (tmp_path/'train_model'/'config.json').exists()
    for arch in ARCHS:
        a = res['throughput'][arch]
        assert a['ok'], (arch, a)
        for k in ('train_img_s', 'infer_img_s'): assert math.isfinite(a[k]) and a[k] > 0, (arch, k, a[k])
        assert a['checks'] and set(a['checks'].values()) == {'skipped (dry run)'}, (arch, a['checks'])
        assert 'train_peak_mib' not in a   # CPU: no CUDA memory peak
    assert set(res['notebooks']) == set(NOTEBOOKS)
    assert snapshot(GPU_FIGS) == before, "the dry run wrote under figures/gpu"

def test_no_cuda_exits_2():
    torch = pytest.importorskip('torch')
    if torch.cuda.is_available(): pytest.skip("a CUDA device is present: the real check would run")
    before = snapshot(GPU_FIGS)
    r = gpu_check(timeout=120)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip() == "gpu_check: no CUDA device (use --dry-run to test the script on CPU)" and r.stdout == ''
    assert snapshot(GPU_FIGS) == before
