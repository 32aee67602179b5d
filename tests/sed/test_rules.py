"""Alert rules as data: the shipped file, and every way a rules file can be wrong (ConfigError naming it)."""

from __future__ import annotations

import numpy as np
import pytest

from nodes.sed.rules import load_rules
from stream.errors import ConfigError

SHIPPED = ["smoke_alarm", "glass_break", "dog_bark", "baby_cry", "doorbell", "knock", "siren", "scream", "gunshot",
           "car_horn", "cough", "laughter", "phone_ring", "speech", "music"]


def test_shipped_rules_are_named_exactly(shipped, class_names):
    assert [r.name for r in shipped] == SHIPPED
    for rule in shipped:
        assert [class_names[i] for i in rule.indices] == list(rule.classes)
        assert 0 < rule.off <= rule.threshold <= 1


def write(tmp_path, text):
    path = tmp_path / "rules.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    ('[rules.a]\nclasses = ["Dog"]\nthreshhold = 0.5\n', "unknown key(s) ['threshhold']"),
    ('[rules.a]\nclasses = ["Dgo barking"]\n', "unknown class name(s) ['Dgo barking']"),
    ('[rules.a]\nclasses = ["Dog"]\nthreshold = 1.5\n', "threshold = 1.5 is out of range"),
    ('[rules.a]\nclasses = ["Dog"]\nrelease = 0.9\nthreshold = 0.5\n', "release = 0.9 is out of range"),
    ('[rules.a]\nclasses = ["Dog"]\nsmooth = 2\n', "smooth = 2 is out of range"),
    ('[rules.a]\nclasses = ["Dog"]\nthreshold = "high"\n', "threshold must be float"),
    ('[rules.a]\nthreshold = 0.5\n', "give either `classes`"),
    ('[rules.a]\nclasses = ["Dog"]\nprototypes = "x.npz"\n', "give either `classes`"),
    ('[rulez.a]\nclasses = ["Dog"]\n', "unknown table(s) ['rulez']"),
    ('[defaults]\ncooldwn = 3\n[rules.a]\nclasses = ["Dog"]\n', "unknown key(s) ['cooldwn']"),
    ("[defaults]\nsmooth = 3\n", "no rules"),
    ('[rules.a]\nprototypes = "missing.npz"\n', "cannot read prototypes"),
    ('[rules.a]\nclasses = ["Knock"]\nunless = ["Claping"]\n', "unknown class name(s) ['Claping']"),
    ('[rules.a]\nclasses = ["Knock"]\nunless = ["Knock"]\n', "unless names its own class(es) ['Knock']"),
    ('[defaults]\nunless = ["Knock"]\n[rules.a]\nclasses = ["Dog"]\n', "cannot set `classes`, `unless`"),
])
def test_bad_rules_name_what_is_wrong(tmp_path, class_names, text, message):
    with pytest.raises(ConfigError, match=None) as err:
        load_rules(write(tmp_path, text), class_names)
    assert message in str(err.value) and "rules.toml" in str(err.value)


def test_shipped_rivals_are_outside_their_groups(shipped, class_names):
    knock = next(r for r in shipped if r.name == "knock")
    assert "Clapping" in [class_names[i] for i in knock.rivals]
    for rule in shipped:
        assert not set(rule.rivals) & set(rule.indices)


def test_defaults_apply_and_rules_override(tmp_path, class_names):
    text = '[defaults]\ncooldown = 3\nsmooth = 5\n[rules.a]\nclasses = ["Dog", "Bark"]\ntop_k = 2\n' \
           '[rules.b]\nclasses = ["Cough"]\ncooldown = 1\n'
    a, b = load_rules(write(tmp_path, text), class_names)
    assert (a.cooldown, a.smooth, a.top_k, b.cooldown, b.smooth) == (3.0, 5, 2, 1.0, 5)


def test_taught_rule_loads_unit_prototypes_relative_to_the_file(tmp_path, class_names):
    np.savez(tmp_path / "bell.npz", embeddings=np.array([[3.0, 4.0], [0.0, 2.0]], np.float32),
             counter=np.array([[0.0, -5.0]], np.float32))
    (rule,) = load_rules(write(tmp_path, '[rules.bell]\nprototypes = "bell.npz"\nthreshold = 0.8\n'), class_names)
    assert rule.taught and rule.classes == ()
    np.testing.assert_allclose(rule.examples, [[0.6, 0.8], [0.0, 1.0]])
    np.testing.assert_allclose(rule.counter, [[0.0, -1.0]])


def test_prototypes_without_counter_examples_ask_for_a_new_teach(tmp_path, class_names):
    np.savez(tmp_path / "bell.npz", embeddings=np.array([[3.0, 4.0]], np.float32))
    with pytest.raises(ConfigError, match="no counter-examples"):
        load_rules(write(tmp_path, '[rules.bell]\nprototypes = "bell.npz"\n'), class_names)
