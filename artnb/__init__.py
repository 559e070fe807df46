"""Painting classification experiments (artist, style, human vs AI) as fastai + nbdev notebooks

Modules:

- `artnb.demo_app`: The demo (S3's "select a model, upload paintings, see the artist and its Grad-CAM") as a web app: `artnb-demo` serves it with Voila, so a visitor sees only the widgets, never a code cell.
- `artnb.experiment`: What every paper notebook (`03_monet` … `07_artbench`) does before and after training: get the data (the synthetic default or a user's real dataset), find the output folder, time the run and build the comparison with the paper.
- `artnb.recipes`: A frozen-feature probe (the reference every fine-tuned number is judged against), stratified and grouped k-fold splits, and the `artnb` fine-tuning recipe: what an experienced fastai user does with a hundred paintings."""

__version__ = "0.1.0"
