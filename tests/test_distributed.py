"""Data-parallel training on two CPU processes (gloo) through `accelerate launch`, the way a user starts several GPUs.

Checks what makes data-parallel training correct: each process trains on its own shard, the shards of an epoch are
disjoint and cover the training set, both processes end with identical weights, one model folder is written, and the
result matches one process trained with the same effective batch size (2 x 8 = 16) within a stated tolerance."""
import json, os, socket, subprocess, sys
from pathlib import Path
import pandas as pd, pytest
from artnb.synth_data import make_dataset

pytest.importorskip('accelerate')
BIN = Path(sys.executable).parent
HERE = Path(__file__).parent
MODEL_FILES = {'README.md', 'config.json', 'model.safetensors', 'metrics.json', 'predictions.csv', 'items.csv', 'seen.csv', 'learning_curves.png'}
# Human vs AI on synthetic AI-ArtBench (S4's layout): 10 styles x (human, AI_SD, AI_LD), 4 small paintings each (32 px),
# weak generator traces (strength 0.4), pretrained Lite0 at 64 px, a 50/20/30 split. Few images, imbalanced (1 human : 2 AI)
# and not solved at 1.0, so a lost shard or broken gradient averaging would show; about 20 s a run on 2 CPU cores.
ARGS = ['--task', 'ai', '--arch', 'tf_efficientnet_lite0', '--img-size', '64', '--epochs', '2', '--seed', '3',
        '--ratios', '0.5,0.2,0.3']
ACC_TOL = 0.15   # test accuracy, 2 processes vs 1 (n_test is about 35: one image is 0.03)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return make_dataset('ai-artbench', tmp_path_factory.mktemp('dist')/'paintings', n_per_class=4, size=32, seed=5,
                        ai_strength=0.4)


@pytest.fixture(scope='module')
def two_procs(data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('two')
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'HF_HUB_OFFLINE': '1', 'PYTHONWARNINGS': 'ignore'}
    # accelerate's --cpu flag starts one process unless MPI is set up; --multi_gpu starts torch's launcher, and artnb's
    # DataParallel asks accelerate for CPU processes (gloo) when there is no GPU
    cmd = [str(BIN/'accelerate'), 'launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1', '--mixed_precision', 'no',
           '--dynamo_backend', 'no', '--main_process_port', str(free_port()),
           str(HERE/'dist_worker.py'), str(tmp), str(data), str(tmp/'model'), '--bs', '8', *ARGS]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    reports = [json.loads((tmp/f'rank{i}.json').read_text()) for i in range(2)]
    return tmp, reports, r.stdout


def test_shards_disjoint_and_cover_the_training_set(two_procs):
    tmp, (r0, r1), _ = two_procs
    items = pd.read_csv(tmp/'model'/'items.csv')
    n_train = int((items['split'] == 'train').sum())
    t0, t1 = [s for s in r0['shards'] if s['train']], [s for s in r1['shards'] if s['train']]
    assert t0 and len(t0) == len(t1), (len(t0), len(t1))
    for a, b in zip(t0, t1):   # every epoch of every fit
        assert a['n'] == b['n'] == n_train
        assert len(a['idxs']) == len(b['idxs']) == (n_train + 1) // 2
        assert set(a['idxs']) | set(b['idxs']) == set(range(n_train))
        if n_train % 2 == 0: assert not set(a['idxs']) & set(b['idxs'])
        else: assert len(set(a['idxs']) & set(b['idxs'])) <= 1   # one index repeated to even the shards
    assert t0[0]['idxs'] != t0[1]['idxs'] if len(t0) > 1 else True


def test_identical_weights_and_one_model_folder(two_procs):
    tmp, (r0, r1), out = two_procs
    assert r0['rc'] == r1['rc'] == 0 and r0['processes'] == r1['processes'] == 2
    assert r0['weights_sha256'] == r1['weights_sha256']
    assert r0['weights_sha256_by_rank'] == [r0['weights_sha256']] * 2
    assert set(r0['files']) == MODEL_FILES and r0['files'] == r1['files']   # rank 1 sees rank 0's complete folder
    assert {p.name for p in tmp.iterdir()} == {'model', 'rank0.json', 'rank1.json'}
    mj = json.loads((tmp/'model'/'metrics.json').read_text())
    assert mj['params']['processes'] == 2 and mj['results']['weights_sha256'] == r0['weights_sha256']
    assert out.count('artnb-train:') == 1   # one process reports


def test_matches_one_process_with_the_same_effective_batch(two_procs, data, tmp_path):
    from artnb.training import train_model
    _, (r0, _), _ = two_procs
    one = train_model(data, tmp_path/'one', bs=16, verbose=False, task='ai', arch='tf_efficientnet_lite0', img_size=64,
                      epochs=2, seed=3, ratios=(0.5, 0.2, 0.3))
    a1, a2 = one['metrics']['accuracy'], r0['metrics']['accuracy']
    print(f"test accuracy (synthetic, n={one['n_test']}): 1 process bs 16 {a1:.3f}; 2 processes bs 8 each {a2:.3f}")
    assert one['n_test'] == r0['n_test']
    assert abs(a1 - a2) <= ACC_TOL, (a1, a2)


def test_module_entry_point():
    r = subprocess.run([sys.executable, '-m', 'artnb.train', '--help'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and '--recipe' in r.stdout, r.stderr[-2000:]
