"""Painting classification experiments (artist, style, human vs AI) as fastai + nbdev notebooks

Modules:

- `artnb.experiment`: What every paper notebook (`03_monet` … `07_artbench`) does before and after training: get the data (the synthetic default or a user's real dataset), find the output folder, time the run and build the comparison with the paper."""

__version__ = "0.1.0"
