"""Shared fixtures of the sound-event tests: the YAMNet class names and the shipped rules."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from nodes.sed.rules import DEFAULT_RULES, Rule, load_rules


@pytest.fixture(scope="session")
def class_names(models: Path) -> list[str]:
    with open(models / "yamnet" / "yamnet_class_map.csv", newline="") as f:
        return [row["display_name"] for row in csv.DictReader(f)]


@pytest.fixture(scope="session")
def shipped(class_names) -> list[Rule]:
    return load_rules(DEFAULT_RULES, class_names)


@pytest.fixture(scope="session")
def yamnet():
    """One JAX YAMNet per test session (compiled executables kept on disk for the node processes)."""
    from nodes.sed.yamnet import load_yamnet
    from stream.models import use_compile_cache

    use_compile_cache()
    return load_yamnet(max_batch=8)
