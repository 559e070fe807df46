"A saved model predicts exactly what the training pipeline's validation set gives (`learn.get_preds`)"
import numpy as np, pytest, torch
from artnb.data import scan, split_items, art_dls, RESIZE_METHODS
from artnb.learner import art_learner
from artnb.inference import save_model, load_model

P3 = ['Synth Mondrian', 'Synth Rothko', 'Synth Hokusai']


@pytest.fixture(scope='module')
def items(synth):
    "The suite's shared tiny dataset (tests/conftest.py); the (40, 24) input size below is not square, so squish, pad and crop give different inputs"
    return synth.items


CASES = [dict(resize=r) for r in RESIZE_METHODS] + [dict(resize='pad', grayscale=True),
         dict(resize='crop', noise_blur=True, noise_blur_valid=True)]


@pytest.mark.parametrize('kw', CASES, ids=lambda k: '-'.join(f'{a}={b}' for a, b in k.items()))
def test_load_model_matches_get_preds(items, kw, tmp_path):
    dls = art_dls(items, size=(40, 24) if kw['resize'] != 'crop' else 32, bs=4, **kw)
    learn = art_learner(dls, 'simple_cnn', head='gap', pretrained=False)
    pred = load_model(save_model(learn, tmp_path/'m'), device='cpu')
    torch.manual_seed(0)
    with learn.no_bar(): want = learn.get_preds(dl=dls.valid)[0].numpy()
    torch.manual_seed(0)   # the same noise draws where the validation pipeline adds noise (S1's noise + blur):
    torch.empty((), dtype=torch.int64).random_()   # torch's DataLoader iterator draws one seed before the first batch
    got = pred.predict(list(dls.valid.items.path), bs=4).probs
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert pred.config.resize['method'] == kw['resize']
