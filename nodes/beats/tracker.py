"""The online beat tracker as one stateful step: audio in (any rate, mono), beats and tempo changes out.

Two front ends feed the same decoder: `dp`, the onset strength of `onset.py` (100 frames/s), and `crnn`, BeatNet's
CRNN in JAX (`beatnet.py`, 50 frames/s, with a downbeat activation that places beats in the bar), with BeatNet's
weights or (`crnn-tuned`) the weights fine-tuned on the music development set's tune half (`train.py`). The node
(`node.py`) and the file command (`files.py`) both run this object, so live and file mode emit the same beats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr

from nodes.beats.bars import BarConfig, BarTracker
from nodes.beats.decoder import BeatDecoder, DecoderConfig
from nodes.beats.onset import RATE, OnsetConfig, OnsetDetector
from stream.errors import AudioError, ConfigError

MODES = ("dp", "crnn", "crnn-tuned")
OFFSETS = {"dp": 0.015, "crnn": 0.023, "crnn-tuned": 0.019}  # s: median (reference - ours) over matched beats,
#                                                                 drums/band, tune half (crnn-tuned: its held-out slice)


@dataclass(frozen=True)
class Beat:
    time: float  # s from the stream's first sample
    predicted: bool  # emitted before its time had been heard
    strength: float  # [0, 1] posterior mass of the tempo behind it
    tempo: float  # BPM of the period behind it
    position: int  # beat in the bar (1 = downbeat), 0 when unknown


@dataclass(frozen=True)
class TempoChange:
    time: float  # s from the stream's first sample
    bpm: float
    confidence: float  # [0, 1]


@dataclass(frozen=True)
class TrackerConfig:
    mode: str = "dp"  # "dp" (onset strength), "crnn" (BeatNet's CRNN, needs the beatnet model file) or
    #                   "crnn-tuned" (the same network, our fine-tuned weights, nodes/beats/beatnet_tuned.npz)
    model: int = 1  # crnn mode: which BeatNet model (1, 2 or 3)
    offset_s: float | None = None  # added to every beat time (s); None = the mode's tuned value (OFFSETS)
    tempo_change: float = 0.04  # relative tempo change that triggers a tempo.changed event
    tempo_hold_s: float = 1.0  # the new tempo must hold this long (s) before it is announced
    tempo_every_s: float = 0.02  # the tempo is looked at on the frames of this grid (s), timed by their audio: so
    #                              a tracker restarted mid-stream (or fed other block sizes) tells the same changes
    onset: OnsetConfig = field(default_factory=OnsetConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    bars: BarConfig = field(default_factory=BarConfig)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"beats mode must be one of {MODES}, got {self.mode!r}")
        if self.model not in (1, 2, 3):
            raise ConfigError(f"beats model must be 1, 2 or 3 (BeatNet's three trainings), got {self.model}")


class BeatTracker:
    """`push(samples) -> (beats, tempo changes)` for one stream; `reset()` starts a new one."""

    def __init__(self, config: TrackerConfig | None = None, rate: int = RATE, params=None) -> None:
        self.config = config or TrackerConfig()
        self.rate = rate
        c = self.config
        self.offset = OFFSETS[c.mode] if c.offset_s is None else c.offset_s
        if c.mode == "dp":
            self.frontend = OnsetDetector(c.onset)
        else:
            from nodes.beats.beatnet import BeatNetFrontEnd, weights

            self.frontend = BeatNetFrontEnd(params if params is not None else weights(c.mode, c.model))
        self.decoder = BeatDecoder(c.decoder, self.frontend.config.fps)
        self.bars = BarTracker(c.bars)
        self.reset()

    def reset(self) -> None:
        self.resampler = self._resampler()
        self.frontend.reset()
        self.decoder.reset()
        self.bars.reset()
        self.observations = np.zeros(0, np.float32)
        self.heard = 0  # samples at RATE pushed so far, or since the stream's first sample after a gap (`resume`)
        self.announced = 0.0  # last announced BPM
        self.candidate: tuple[float, float] | None = None  # (BPM, since s) waiting to hold
        self.downbeat = np.zeros(256, np.float32)  # crnn: recent downbeat activations, by frame modulo 256
        self.previous_beat: int | None = None  # frame of the last emitted beat

    def _resampler(self) -> soxr.ResampleStream | None:
        """soxr's low-quality filter: its output follows the input block by block, where the high-quality one
        holds ~2.5 blocks of 20 ms and releases them at once (a live graph at 16 kHz announced beats at p50 +30 ms
        with it, -8 ms with this one); fed 16 kHz, the tune half's beat F is the same with either (bench/beats.py
        --rate 16000: dp 0.651, crnn-tuned 0.740)."""
        return soxr.ResampleStream(self.rate, RATE, 1, dtype="float32", quality="LQ") if self.rate != RATE else None

    def resume(self, seconds: float) -> None:
        """Audio went missing (a drop, a restart from `state_dict`): the next sample pushed is the stream's at
        `seconds`. The front end's frames stay on the stream's grid and the decoder's posterior over tempo and
        phase is carried across the gap, so beats come back in phase with an unharmed tracker's; before, the
        tracker re-locked from scratch on frames off the grid (bench/faults.py, beats kill: 27 of 53 lost)."""
        at = round(seconds * RATE)
        self.resampler = self._resampler()
        self.decoder.skip_to(self.frontend.resume(at))
        self.heard = at

    def state_dict(self) -> dict[str, Any]:
        """What a restarted tracker needs to be back in phase after the gap (`resume`): the decoder's posterior,
        the front end's level, the announced tempo and the bar position."""
        return {"decoder": self.decoder.state_dict(), "frontend": self.frontend.state_dict(),
                "announced": self.announced, "candidate": list(self.candidate) if self.candidate else None,
                "downbeat": self.downbeat.copy(), "previous_beat": self.previous_beat,
                "bars": {"scores": self.bars.scores.copy(), "count": self.bars.count}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decoder.load_state_dict(state["decoder"])
        self.frontend.load_state_dict(state["frontend"])
        self.announced = float(state["announced"])
        self.candidate = tuple(state["candidate"]) if state["candidate"] else None
        self.downbeat = np.asarray(state["downbeat"], np.float32).copy()
        self.previous_beat = state["previous_beat"]
        self.bars.scores = np.asarray(state["bars"]["scores"], float).copy()
        self.bars.count = int(state["bars"]["count"])

    def push(self, samples: np.ndarray, last: bool = False) -> tuple[list[Beat], list[TempoChange]]:
        x = np.asarray(samples, np.float32).reshape(-1)
        if not np.isfinite(x).all():
            raise AudioError("beats: audio contains NaN or infinite samples; fix the source")
        if self.resampler is not None:
            x = self.resampler.resample_chunk(x, last=last)
        self.heard += len(x)
        out = self.frontend.push(x, last)  # [n] onset strength, or [n, 2] beat and downbeat activations
        obs, downbeat = (out, None) if out.ndim == 1 else (out.sum(axis=1), out[:, 1])
        self.observations = obs  # what the decoder saw for this block (file mode plots it)
        first = self.decoder.state.frame
        if downbeat is not None:
            self.downbeat[(first + np.arange(len(obs))) % len(self.downbeat)] = downbeat
        beats, tempi = [], []
        now = self.heard / RATE
        every = max(1, round(self.config.tempo_every_s * self.frontend.config.fps))
        for i in range(len(obs)):
            frame = self.decoder.state.frame
            for b in self.decoder.step(obs[i:i + 1]):
                t = self.frontend.frame_time(b.frame + b.ahead) + self.offset
                if t < 0:
                    continue
                position = self.bars.step(self._downbeat_at(self.previous_beat) if downbeat is not None else None)
                self.previous_beat = b.frame + b.ahead
                beats.append(Beat(round(t, 4), t > now, round(b.strength, 3),
                                  round(60.0 * self.frontend.config.fps / b.period, 1), position))
            if (frame + 1) % every == 0:
                tempi += self._tempo(self.frontend.heard_at(frame))
        return beats, tempi

    def _downbeat_at(self, frame: int | None) -> float | None:
        """Largest downbeat activation within two frames of `frame` (heard by now), None before the first beat."""
        if frame is None:
            return None
        return float(self.downbeat[np.arange(frame - 2, frame + 3) % len(self.downbeat)].max())

    def _tempo(self, now: float) -> list[TempoChange]:
        """A tempo.changed event when the decoder's tempo moved by `tempo_change` and held for `tempo_hold_s`."""
        bpm, confidence = self.decoder.tempo()
        c = self.config
        if self.announced and abs(bpm / self.announced - 1) < c.tempo_change:
            self.candidate = None
            return []
        if self.candidate is None or abs(bpm / self.candidate[0] - 1) >= c.tempo_change:
            self.candidate = (bpm, now)
            return []
        if now - self.candidate[1] < c.tempo_hold_s:
            return []
        self.announced, self.candidate = bpm, None
        return [TempoChange(round(now, 3), round(bpm, 1), round(confidence, 3))]
