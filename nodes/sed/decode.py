"""Per-patch model outputs -> alert edges: pooling, gate, running median, hysteresis, hold, minimum duration, cooldown.

Pure pieces (`pool`, `level`, `gates`, `top_tags`) and one small stateful callable, `Decoder`, that sees one patch
at a time, so the live node and file mode make the same decisions. Times are audio seconds since the stream's
first sample. Patch k covers [k * hop, k * hop + window]; its scores are known at its end.

Why these steps (the peer, Frigate, alerts on one label's raw score >= 0.8 per 0.975 s window): a rule pools a
group of related AudioSet classes (a smoke alarm scores as "Smoke detector", "Fire alarm" or just "Alarm"), so
its threshold can sit far lower; the running median removes one-patch blips that a lower threshold would let
through; hysteresis keeps one event through a sound's short dips, and `hold` through its gaps (a dog barking, an alarm
beeping: one event, not one per bark); the RMS gate keeps quiet rooms silent
(YAMNet's scores on near-silence are noise); the cooldown keeps a ringing alarm to one alert.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nodes.sed.rules import Rule

WINDOW_S = 0.96  # s of audio per patch (96 frames of 10 ms)
CLIP_LEVEL = 0.99  # |sample| at or above this counts as clipped
CLIP_FRACTION = 0.3  # more clipped samples than this gates a window ("clipped"; a real car horn: 16 %)
ONSET_OFFSET = 0.16  # s from the start of the patch centred in the median to the reported onset (tune half)
GATE_REASONS = ("silent", "clipped", "nan")
TAUGHT_NEAREST = 20  # examples a taught rule's score averages over (chosen on tune-half chime mixtures)


@dataclass(frozen=True)
class Level:
    """What the gate needs to know about one patch's audio."""

    rms_dbfs: float
    clipped: float  # fraction of samples at or above CLIP_LEVEL
    finite: bool


def level(samples: np.ndarray) -> Level:
    """RMS (dBFS, -inf for digital silence) and clipped fraction of one window of samples."""
    x = np.asarray(samples, np.float64)
    if x.size == 0 or not np.isfinite(x).all():
        return Level(-math.inf, 0.0, False)
    rms = math.sqrt(float(np.mean(x * x)))
    return Level(20 * math.log10(rms) if rms > 0 else -math.inf, float(np.mean(np.abs(x) >= CLIP_LEVEL)), True)


def gates(rules: Sequence[Rule], lvl: Level) -> list[str | None]:
    """Per rule, why this patch may not raise an alert ("nan", "clipped", "silent"), or None."""
    if not lvl.finite:
        return ["nan"] * len(rules)
    if lvl.clipped > CLIP_FRACTION:
        return ["clipped"] * len(rules)
    return ["silent" if lvl.rms_dbfs < r.gate_dbfs else None for r in rules]


def pool(rules: Sequence[Rule], scores: np.ndarray, embeddings: np.ndarray | None = None) -> np.ndarray:
    """Rule scores [..., rules] from class scores [..., classes] and embeddings [..., dim].

    A class rule is the mean of its group's `top_k` highest scores (k = 1: the max), or 0 where one of its
    `unless` classes scores higher than that (knock vs clapping: the model knows the difference, a threshold on
    the knock group alone does not); a taught rule is its `taught_score`, floored at 0.
    """
    out = np.zeros(scores.shape[:-1] + (len(rules),), np.float32)
    for j, rule in enumerate(rules):
        if rule.taught:
            if embeddings is None:
                raise ValueError(f"rule {rule.name!r} is taught: it needs embeddings")
            out[..., j] = np.maximum(0.0, taught_score(embeddings, rule.examples, rule.counter))
        else:
            group = scores[..., list(rule.indices)]
            k = min(rule.top_k, group.shape[-1])
            out[..., j] = np.sort(group, axis=-1)[..., -k:].mean(-1)
            if rule.rivals:
                out[..., j] *= out[..., j] >= scores[..., list(rule.rivals)].max(-1)
    return out


def taught_score(embeddings: np.ndarray, examples: np.ndarray, counter: np.ndarray) -> np.ndarray:
    """How much closer each embedding [..., dim] is to the taught sound than to anything else: its mean cosine
    similarity to the TAUGHT_NEAREST nearest examples [n, dim] minus its best similarity to the counter-examples
    [m, dim] (unit rows). A room's own sounds lie near some counter-example, so they score at or below 0; the mean
    over several examples asks for a likeness to the sound, not to one lucky patch."""
    e = embeddings / np.maximum(np.linalg.norm(embeddings, axis=-1, keepdims=True), 1e-12)
    k = min(TAUGHT_NEAREST, len(examples))
    return np.sort(e @ examples.T, axis=-1)[..., -k:].mean(-1) - (e @ counter.T).max(-1)


def top_tags(scores: np.ndarray, names: Sequence[str], k: int) -> list[tuple[str, float]]:
    """The k classes with the highest score over a run of patches [patches, classes] (max over patches)."""
    best = scores.max(0) if scores.ndim == 2 else scores
    order = np.argsort(-best)[:k]
    return [(names[i], float(best[i])) for i in order]


@dataclass(frozen=True)
class Edge:
    """A rule starts or stops. `t` is the estimated onset/offset, `decided` when the edge became known."""

    rule: str
    kind: str  # "start" | "stop"
    t: float  # s of audio
    score: float  # smoothed rule score at the edge (start) or the event's peak (stop)
    decided: float  # s of audio at the end of the patch that decided it
    onset: float  # the event's onset (= t for a start)


@dataclass
class _RuleState:
    recent: list[float] = field(default_factory=list)  # last `smooth` raw scores
    run: int = 0  # consecutive patches with the smoothed score above release, in the current candidate/event
    onset: float = -1.0  # onset of the candidate or active event, -1 when none
    active: bool = False  # announced (sound.start sent)
    peak: float = 0.0
    quiet_until: float = -math.inf  # end of the cooldown after the last stop
    below: float = -1.0  # while active: when the score fell below release (the event ends `hold` s later), else -1


class Decoder:
    """Streaming decisions for a list of rules, one patch at a time; `state_dict` survives a restart.

    `__call__(k, scores, gated)` takes patch k's rule scores [rules] and gate reasons; the median is centred, so
    its value belongs to patch k - smooth // 2 and the edges it decides are reported at that patch's time
    (plus `onset_offset`), while `decided` is the end of patch k.
    """

    def __init__(self, rules: Sequence[Rule], hop: float, window: float = WINDOW_S,
                 onset_offset: float = ONSET_OFFSET) -> None:
        self.rules = list(rules)
        self.hop, self.window, self.onset_offset = hop, window, onset_offset
        self.reset()

    def reset(self) -> None:
        self.states = [_RuleState() for _ in self.rules]
        self.patches = 0

    def __call__(self, scores: np.ndarray, gated: Sequence[str | None]) -> list[Edge]:
        k = self.patches
        self.patches += 1
        decided = k * self.hop + self.window
        edges = []
        for rule, s, raw, why in zip(self.rules, self.states, scores, gated):
            s.recent = (s.recent + [0.0 if why else float(raw)])[-rule.smooth:]
            smoothed = sorted(s.recent)[(len(s.recent) - 1) // 2]  # the lower middle while the window fills
            t = max(0.0, (k - len(s.recent) // 2) * self.hop) + self.onset_offset
            edges += self._step(rule, s, smoothed, t, decided)
        return edges

    def _step(self, rule: Rule, s: _RuleState, score: float, t: float, decided: float) -> list[Edge]:
        if s.onset < 0:  # idle: a candidate begins when the score crosses the threshold after the cooldown
            if score >= rule.threshold and t >= s.quiet_until:
                s.onset, s.run, s.peak = t, 0, score
            else:
                return []
        if score < rule.off:  # the candidate ends, or the event once it has stayed below for `hold` s
            if s.active and s.below < 0:
                s.below = t
            if s.active and t - s.below < rule.hold - 1e-9:
                return []
            was_active, onset, peak, end = s.active, s.onset, s.peak, s.below
            s.onset, s.run, s.active, s.below = -1.0, 0, False, -1.0
            if not was_active:
                return []
            s.quiet_until = end + rule.cooldown
            return [Edge(rule.name, "stop", end, peak, decided, onset)]
        s.below = -1.0
        s.run += 1
        s.peak = max(s.peak, score)
        if not s.active and (s.run - 1) * self.hop >= rule.min_duration - 1e-9:
            s.active = True
            return [Edge(rule.name, "start", s.onset, score, decided, s.onset)]
        return []

    def finish(self, t_end: float) -> list[Edge]:
        """Stop every active event at the end of the stream (t_end: s of audio)."""
        edges = []
        for rule, s in zip(self.rules, self.states):
            if s.active:
                end = s.below if s.below >= 0 else t_end
                edges.append(Edge(rule.name, "stop", max(s.onset, end), s.peak, t_end, s.onset))
            s.onset, s.run, s.active, s.below = -1.0, 0, False, -1.0
        return edges

    def state_dict(self) -> dict[str, Any]:
        return {"patches": self.patches, "rules": {r.name: vars(s).copy() for r, s in zip(self.rules, self.states)}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.patches = int(state["patches"])
        saved = state["rules"]
        self.states = [_RuleState(**saved[r.name]) if r.name in saved else _RuleState() for r in self.rules]


def decode(rules: Sequence[Rule], scores: np.ndarray, gated: Sequence[Sequence[str | None]], hop: float,
           duration: float, onset_offset: float = ONSET_OFFSET) -> list[Edge]:
    """Every edge of a whole score matrix [patches, rules] (what the node would emit), for tuning and tests."""
    decoder = Decoder(rules, hop, onset_offset=onset_offset)
    edges = []
    for row, why in zip(scores, gated):
        edges += decoder(row, why)
    return edges + decoder.finish(duration)


def events(edges: Sequence[Edge]) -> list[tuple[float, float, str]]:
    """(onset, offset, rule) of every finished event, in onset order: sed_eval's event list."""
    return sorted((e.onset, e.t, e.rule) for e in edges if e.kind == "stop")
