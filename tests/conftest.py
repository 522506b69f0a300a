"""Shared fixtures: where the real benchmark data and peer weights are (tests skip without them)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/runutil.py


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tests use tiny models: one thread is fastest, and far faster than two on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _locate(env: str, fallback: Path) -> Path | None:
    value = os.environ.get(env)
    path = Path(value) if value else fallback
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real benchmark data ($KDRESTORE_DATA, else ../shared/data beside the checkout)."""
    path = _locate("KDRESTORE_DATA", REPO.parent / "shared" / "data")
    if path is None:
        pytest.skip("real benchmark data not available (set KDRESTORE_DATA)")
    return path


@pytest.fixture(scope="session")
def peers_dir() -> Path:
    """The published peer weights ($KDRESTORE_PEERS, else ../shared/peers beside the checkout)."""
    path = _locate("KDRESTORE_PEERS", REPO.parent / "shared" / "peers")
    if path is None:
        pytest.skip("published peer weights not available (set KDRESTORE_PEERS)")
    return path
