"""One stream's sound-event detector: 16 kHz samples in, alert edges and periodic tags out.

The live `sed` node keeps one `Detector` per stream and `stream detect` one per file, so both make the same
decisions: streaming log-mel -> a 0.96 s patch every `hop` -> YAMNet (scores + embedding) -> rule scores ->
gate -> `Decoder`. Samples may come in blocks of any size; the patches a block completes go to the model in one
batch (one per hop live, hundreds per block in file mode).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from nodes.sed.decode import Decoder, Edge, gates, level, pool, top_tags
from nodes.sed.frontend import HOP, SAMPLE_RATE, WINDOW, StreamingLogMel
from nodes.sed.rules import Rule
from nodes.sed.yamnet import PATCH_FRAMES, Yamnet
from stream.errors import ConfigError

PATCH_SAMPLES = (PATCH_FRAMES - 1) * HOP + WINDOW  # 15600: the samples behind one patch
DEFAULT_HOP = 0.08  # s between patches (tune half: event F1 0.442 -> 0.466, latency 0.89 -> 0.83 s vs 0.16 s)


def hop_frames(hop: float) -> int:
    """Patch hop in 10 ms frames; ConfigError unless a multiple of 0.01 s in [0.01, 0.96]."""
    frames = round(hop * SAMPLE_RATE / HOP)
    if not 1 <= frames <= PATCH_FRAMES or abs(frames * HOP / SAMPLE_RATE - hop) > 1e-6:
        raise ConfigError(f"sed hop = {hop!r} s: use a multiple of 0.01 s between 0.01 and 0.96")
    return frames


@dataclass(frozen=True)
class Tags:
    """The top classes of a stretch of audio: `t` s (start), `duration` s, [(name, max score)]."""

    t: float
    duration: float
    top: list[tuple[str, float]]


@dataclass
class Output:
    edges: list[Edge] = field(default_factory=list)
    tags: list[Tags] = field(default_factory=list)
    gated: dict[str, int] = field(default_factory=dict)  # patches gated per reason, all rules
    times: list[float] = field(default_factory=list)  # s, start of each patch decided
    rule_scores: list[np.ndarray] = field(default_factory=list)  # [rules] pooled score per patch (before gate)


class Detector:
    """Streaming detection for one stream. `tags_every` s of audio per `Tags` (0 = none), `tags_k` classes each."""

    def __init__(self, model: Yamnet, rules: Sequence[Rule], hop: float = DEFAULT_HOP, tags_every: float = 1.0,
                 tags_k: int = 5) -> None:
        self.model, self.rules = model, list(rules)
        self.hop_frames = hop_frames(hop)
        self.hop = self.hop_frames * HOP / SAMPLE_RATE
        self.tags_every, self.tags_k = tags_every, tags_k
        self.needs_embeddings = any(r.taught for r in self.rules)
        self.frontend = StreamingLogMel()
        self.decoder = Decoder(self.rules, self.hop)
        self.reset()

    def reset(self) -> None:
        self.frontend.reset()
        self.decoder.reset()
        self.frames = np.zeros((0, 64), np.float32)  # log-mel frames from frame `first_frame` on
        self.first_frame = 0
        self.audio = np.zeros(0, np.float32)  # samples from sample `first_sample` on (for the gate)
        self.first_sample = 0
        self.samples = 0  # stream time of the next sample, in samples: pushed so far plus gaps skipped
        self._tag_scores: list[np.ndarray] = []
        self.tag_start = 0.0  # s of audio where the next sound.tags stretch begins

    @property
    def seconds(self) -> float:
        return self.samples / SAMPLE_RATE

    def skip_to(self, t: float) -> None:
        """Go on at stream time `t` (s) after audio was lost: what is buffered is dropped, the next patch is the
        first of the patch grid at or after `t`, and sound.tags stretches keep their grid on the stream's time
        (open events and the smoothing go on). The caller cuts the samples before `seconds` (under one hop)."""
        k = max(self.decoder.patches, math.ceil(t / self.hop - 1e-9))
        self.decoder.patches = k
        self.frontend.reset()
        self.first_frame = k * self.hop_frames
        self.first_sample = self.samples = self.first_frame * HOP
        self.frames = np.zeros((0, 64), np.float32)
        self.audio = np.zeros(0, np.float32)
        if self.tags_every > 0 and self.tag_start + self.tag_period <= t:
            self.tag_start += math.floor((t - self.tag_start) / self.tag_period) * self.tag_period
            self._tag_scores = []

    @property
    def tag_period(self) -> float:
        """s per sound.tags stretch: `tags_every` rounded up to whole hops, so stretches keep one grid."""
        return math.ceil(self.tags_every / self.hop - 1e-9) * self.hop

    def push(self, samples: np.ndarray) -> Output:
        """Feed mono float32 samples at 16 kHz; returns what the patches they completed decided."""
        samples = np.asarray(samples, np.float32)
        self.samples += len(samples)
        self.audio = np.concatenate([self.audio, samples])
        self.frames = np.concatenate([self.frames, self.frontend.push(samples)])
        k0 = self.decoder.patches
        ready = (self.first_frame + len(self.frames) - PATCH_FRAMES) // self.hop_frames + 1 - k0
        out = Output()
        if ready <= 0:
            return out
        starts = [(k0 + i) * self.hop_frames for i in range(ready)]
        patches = np.stack([self.frames[f - self.first_frame:f - self.first_frame + PATCH_FRAMES] for f in starts])
        scores, embeddings = self.model(patches)
        rule_scores = pool(self.rules, scores, embeddings if self.needs_embeddings else None)
        for i, f in enumerate(starts):
            s0 = f * HOP - self.first_sample
            why = gates(self.rules, level(self.audio[s0:s0 + PATCH_SAMPLES]))
            for reason in set(why) - {None}:
                out.gated[reason] = out.gated.get(reason, 0) + 1
            out.edges += self.decoder(rule_scores[i], why)
            out.times.append(f * HOP / SAMPLE_RATE)
            out.rule_scores.append(rule_scores[i])
            if self.tags_every > 0:
                self._tags(scores[i], (f * HOP + PATCH_SAMPLES) / SAMPLE_RATE, out)
        keep = (k0 + ready) * self.hop_frames  # the next patch's first frame
        self.frames = self.frames[keep - self.first_frame:]
        self.first_frame = keep
        self.audio = self.audio[keep * HOP - self.first_sample:]
        self.first_sample = keep * HOP
        return out

    def _tags(self, scores: np.ndarray, t_end: float, out: Output) -> None:
        self._tag_scores.append(scores)
        if t_end - self.tag_start >= self.tags_every - 1e-9:
            top = top_tags(np.stack(self._tag_scores), self.model.class_names, self.tags_k)
            out.tags.append(Tags(self.tag_start, t_end - self.tag_start, top))
            # the next stretch starts on the grid: after a gap that is not a whole number of stretches, the first
            # one runs long (its first patch ends a patch after the gap) and t_end is off the grid
            self._tag_scores = []
            self.tag_start += math.floor((t_end - self.tag_start) / self.tag_period + 1e-9) * self.tag_period

    def finish(self) -> list[Edge]:
        """Close every open event at the end of the audio."""
        return self.decoder.finish(self.seconds)

