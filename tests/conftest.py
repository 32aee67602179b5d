"""Shared fixtures: where the read-only models and data live (see ../shared/*/README.md), a run's metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.metrics import run_registry
from stream.paths import data_dir, model_dir


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.fail(f"{what} not found at {path}: set STREAM_MODEL_DIR / STREAM_DATA_DIR to the shared folders")
    return path


@pytest.fixture(scope="session")
def models() -> Path:
    return _need(model_dir(), "model folder")


@pytest.fixture(scope="session")
def data() -> Path:
    return _need(data_dir(), "data folder")


class RunMetrics:
    """Sums of a run's multiprocess metric files (what the supervisor's endpoint serves)."""

    def __init__(self, directory: Path) -> None:
        self.registry = run_registry(directory)

    def get(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def run_metrics():
    return RunMetrics
