"""Shared fixtures: the paper's released splits and tiny local models of each family.

Nothing here touches the network: the data comes from ``../shared/data/paradetox-splits`` (or
``XDET_DATA_DIR``) and models are random weights built from configs with a locally trained tokenizer.
Tiny models are built once per test session and shared between xdist workers through a file lock.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest
from filelock import FileLock
from training_data import training_texts

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data" / "paradetox-splits"

# A test run started in the background by a script (`pytest ... &`) inherits SIGINT ignored, and so would
# the commands the Ctrl-C tests interrupt: an ignored signal stays ignored across exec, a handled one is
# reset to the default there. Handling it here gives those commands Ctrl-C as a terminal gives it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # two workers on two cores: one thread each, or tiny-model generation slows ~10x from oversubscription
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)


def shared_data_dir() -> Path:
    path = Path(os.environ.get("XDET_DATA_DIR") or SHARED_DATA)
    if not (path / "de_train_toxic.csv").is_file():
        raise RuntimeError(
            f"the paper's released splits are missing at {path}; tests need ../shared/data/paradetox-splits "
            "next to the checkout (or XDET_DATA_DIR)"
        )
    return path.resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return shared_data_dir()


@pytest.fixture(scope="session", autouse=True)
def _session_env(tmp_path_factory, data_dir):
    """The whole session reads the shared splits and writes caches to a private temp dir."""
    os.environ["XDET_DATA_DIR"] = str(data_dir)
    os.environ["XDET_CACHE_DIR"] = str(_shared_cache_dir(tmp_path_factory))
    os.environ["XDET_SCORER"] = "local"  # the offline development scorer, set explicitly


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path_factory, data_dir):
    """Each test starts from the session's data and cache, the local scorer and no API key."""
    monkeypatch.setenv("XDET_DATA_DIR", str(data_dir))
    monkeypatch.setenv("XDET_CACHE_DIR", str(_shared_cache_dir(tmp_path_factory)))
    monkeypatch.setenv("XDET_SCORER", "local")
    monkeypatch.delenv("PERSPECTIVE_API_KEY", raising=False)


def _shared_root(tmp_path_factory) -> Path:
    """A directory shared by all xdist workers of this session."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    shared = root / "xdet-shared"
    shared.mkdir(parents=True, exist_ok=True)
    return shared


def _shared_cache_dir(tmp_path_factory) -> Path:
    cache = _shared_root(tmp_path_factory) / "cache"
    cache.mkdir(exist_ok=True)
    return cache


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, data_dir):
    """``tiny_model(family)`` -> path of a saved tiny random model of that family (built once)."""
    from xdet_train.tiny import save_tiny_model

    root = _shared_root(tmp_path_factory) / "models"
    root.mkdir(exist_ok=True)

    def build(family: str = "llama") -> Path:
        out = root / family
        with FileLock(str(root / f"{family}.lock")):
            if not (out / "config.json").is_file():
                tmp = root / f"{family}.partial"
                shutil.rmtree(tmp, ignore_errors=True)
                save_tiny_model(family, tmp, training_texts(data_dir))
                tmp.rename(out)
        return out

    return build
