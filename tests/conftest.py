"Shared pytest setup: offline, headless, small and deterministic."
import os
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
import sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

@pytest.fixture(scope="session")
def root(): return ROOT

@pytest.fixture(scope="session")
def venv_bin(): return BIN
