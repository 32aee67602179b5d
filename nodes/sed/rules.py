"""Alert rules as data: a TOML file of named rules, each a group of AudioSet classes (or taught prototypes).

Format (`configs/alerts.toml` is the shipped file; `--rules` and the node's `rules` take any file like it):

    [defaults]                  # optional: values for every rule that does not set its own
    smooth = 3

    [rules.smoke_alarm]
    classes = ["Smoke detector, smoke alarm", "Fire alarm", "Alarm"]   # YAMNet display names
    unless = ["Busy signal", "Dial tone"]   # confusable classes: no alert while one of them scores higher
    threshold = 0.3             # (0, 1] the smoothed rule score that starts an event
    release = 0.2               # [0, threshold] the level below which it stops (hysteresis); default threshold / 2
    min_duration = 0.0          # s above `release` before the start is announced (0 = at the first patch)
    hold = 2.0                  # s below `release` before the event stops (gaps shorter than this are bridged)
    cooldown = 10.0             # s after a stop during which the rule cannot start again
    smooth = 3                  # patches in the running median of the rule score (odd, 1 = none)
    top_k = 1                   # pool the group's scores: mean of its k highest (1 = max)
    gate_dbfs = -60.0           # no start while the window's RMS is below this level

    [rules.my_doorbell]         # a taught sound (`stream teach`): how much closer a patch is to the examples than to
                                # the counter-examples (cosine similarity of YAMNet embeddings)
    prototypes = "my_doorbell.npz"   # path relative to this TOML file; `classes` and `prototypes` exclude each other
    threshold = 0.82

Unknown keys, unknown class names and out-of-range values raise ConfigError naming the rule and the key.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from stream.errors import ConfigError
from stream.paths import REPO_ROOT

DEFAULT_RULES = REPO_ROOT / "configs" / "alerts.toml"


@dataclass(frozen=True)
class Rule:
    """One alert: when its pooled, smoothed score crosses `threshold`, `sound.start`; below `release`, `sound.stop`."""

    name: str
    classes: tuple[str, ...] = ()  # AudioSet display names (YAMNet class map); empty for taught rules
    unless: tuple[str, ...] = ()  # confusable classes: the rule scores 0 while the best of them beats its group
    prototypes: str = ""  # .npz of example ("embeddings" [n, 1024]) and counter-example ("counter") embeddings
    threshold: float = 0.5  # (0, 1]
    release: float = -1.0  # [0, threshold]; < 0 means threshold / 2
    min_duration: float = 0.0  # s, >= 0
    hold: float = 0.0  # s, >= 0: an event ends once its score has stayed below release this long
    cooldown: float = 10.0  # s, >= 0
    smooth: int = 3  # patches, odd >= 1
    top_k: int = 1  # >= 1, <= len(classes)
    gate_dbfs: float = -60.0  # dBFS, in [-120, 0]
    indices: tuple[int, ...] = field(default=(), compare=False)  # class indices, filled by `load_rules`
    rivals: tuple[int, ...] = field(default=(), compare=False)  # indices of `unless`, filled by `load_rules`
    examples: np.ndarray | None = field(default=None, compare=False, repr=False)  # [n, 1024] unit rows
    counter: np.ndarray | None = field(default=None, compare=False, repr=False)  # [m, 1024] unit rows (negatives)

    @property
    def off(self) -> float:
        return self.threshold / 2 if self.release < 0 else self.release

    @property
    def taught(self) -> bool:
        return bool(self.prototypes)

    def check(self) -> None:
        """ConfigError naming the rule and the value out of range."""
        where = f"rule {self.name!r}"
        if bool(self.classes) == bool(self.prototypes):
            raise ConfigError(f"{where}: give either `classes` (AudioSet names) or `prototypes` (a taught .npz)")
        checks = {
            "threshold": 0 < self.threshold <= 1,
            "release": self.release < 0 or 0 <= self.release <= self.threshold,
            "min_duration": self.min_duration >= 0,
            "hold": self.hold >= 0,
            "cooldown": self.cooldown >= 0,
            "smooth": self.smooth >= 1 and self.smooth % 2 == 1,
            "top_k": 1 <= self.top_k <= max(1, len(self.classes)),
            "gate_dbfs": -120 <= self.gate_dbfs <= 0,
        }
        if set(self.unless) & set(self.classes):
            raise ConfigError(f"{where}: unless names its own class(es) {sorted(set(self.unless) & set(self.classes))}")
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"{where}: {key} = {getattr(self, key)!r} is out of range (see nodes/sed/rules.py)")


_KEYS = {f.name for f in fields(Rule)} - {"name", "indices", "rivals", "examples", "counter"}
_TYPES = {"classes": list, "unless": list, "prototypes": str, "threshold": float, "release": float,
          "min_duration": float, "hold": float,
          "cooldown": float, "smooth": int, "top_k": int, "gate_dbfs": float}


def parse_rules(table: Mapping[str, Any], class_names: Sequence[str], base: Path = Path(".")) -> list[Rule]:
    """Rules from a parsed TOML document; `class_names` is the model's class map, `base` the folder of the file."""
    unknown = sorted(set(table) - {"defaults", "rules"})
    if unknown:
        raise ConfigError(f"rules file: unknown table(s) {unknown}; expected [defaults] and [rules.<name>]")
    defaults = _values("[defaults]", table.get("defaults", {}))
    if {"classes", "unless", "prototypes"} & set(defaults):
        raise ConfigError("rules file: [defaults] cannot set `classes`, `unless` or `prototypes`")
    rules_table = table.get("rules", {})
    if not isinstance(rules_table, Mapping) or not rules_table:
        raise ConfigError("rules file: no rules; add at least one [rules.<name>] table")
    index = {name: i for i, name in enumerate(class_names)}
    rules = []
    for name, body in rules_table.items():
        rule = Rule(name, **{**defaults, **_values(f"rule {name!r}", body)})
        rule.check()
        missing = [c for c in rule.classes + rule.unless if c not in index]
        if missing:
            hints = {c: difflib.get_close_matches(c, class_names, 2) for c in missing}
            raise ConfigError(f"rule {name!r}: unknown class name(s) {missing}; closest YAMNet names: {hints}")
        rule = replace(rule, indices=tuple(index[c] for c in rule.classes), rivals=tuple(index[c] for c in rule.unless))
        if rule.taught:
            rule = replace(rule, prototypes=str((base / rule.prototypes).resolve()))
            examples, counter = load_prototypes(Path(rule.prototypes), name)
            rule = replace(rule, examples=examples, counter=counter)
        rules.append(rule)
    return rules


def _values(where: str, body: Any) -> dict[str, Any]:
    """Keys of one rule table, type-checked; classes as a tuple."""
    if not isinstance(body, Mapping):
        raise ConfigError(f"rules file: {where} must be a table")
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise ConfigError(f"rules file: {where}: unknown key(s) {unknown}; valid keys: {sorted(_KEYS)}")
    out: dict[str, Any] = {}
    for key, value in body.items():
        want = _TYPES[key]
        ok = isinstance(value, want) and not isinstance(value, bool)
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if key in ("classes", "unless"):
            ok = ok and all(isinstance(c, str) for c in value)
            value = tuple(value)
        if not ok:
            raise ConfigError(f"rules file: {where}: {key} must be {want.__name__}, got {value!r}")
        out[key] = value
    return out


def load_rules(path: Path, class_names: Sequence[str]) -> list[Rule]:
    """Rules of a TOML file (see the module docstring); ConfigError names the file and what is wrong."""
    try:
        table = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"rules file {path} not found (the shipped one is {DEFAULT_RULES})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"rules file {path}: not valid TOML ({exc})") from None
    try:
        return parse_rules(table, class_names, Path(path).parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_prototypes(path: Path, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm example [n, dim] and counter-example [m, dim] embeddings of a taught rule."""
    try:
        with np.load(path) as f:
            arrays = [np.asarray(f[key], np.float32) for key in ("embeddings", "counter")]
    except KeyError:
        raise ConfigError(f"rule {rule!r}: {path} has no counter-examples (an older `stream teach` made it); "
                          "re-run `stream teach`") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"rule {rule!r}: cannot read prototypes {path} ({exc}); re-run `stream teach`") from None
    for a in arrays:
        if a.ndim != 2 or len(a) == 0 or a.shape[1] != arrays[0].shape[1] or not np.isfinite(a).all():
            raise ConfigError(f"rule {rule!r}: prototypes {path} must hold finite [n, dim] arrays, got {a.shape}")
    examples, counter = (a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12) for a in arrays)
    return examples, counter
