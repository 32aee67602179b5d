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
