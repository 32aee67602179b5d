"""Helpers for fault tests: read a run's metrics the way its endpoint does."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector


class RunMetrics:
    """Sums of a run's multiprocess metric files (what the supervisor's endpoint serves)."""

    def __init__(self, directory: Path) -> None:
        self.registry = CollectorRegistry()
        MultiProcessCollector(self.registry, path=str(directory))

    def get(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def run_metrics():
    return RunMetrics
