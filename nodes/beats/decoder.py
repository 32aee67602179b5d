"""Causal beat decoder: an HMM forward filter over (beat period, beat phase), with a tempogram-guided tempo model.

State space (as madmom's bar pointer, one beat long): for each beat period T (frames; log-spaced between
`max_bpm` and `min_bpm`) the phases 0..T-1; phase 0 is the beat. Each frame the phase advances by one; when it
wraps, the period may change: to a near period (cost `stiffness` per unit of relative change, smooth tempo
drift and rubato), or, with probability `jump`, to any period the recent tempogram supports (a tempo change).
Frames whose phase is within the first 1/`beat_width` of the period ("beat states") weigh the observation by
`exp(gain * (o - bias))`; others by one. The filtered posterior is all we keep: O(states) work per frame, no look-back.

A beat is emitted once per period when the best state is at most `lead` frames before its phase 0: the beat time
is then *predicted* from the state's phase and period, which hides the onset front end's delay (and, with a
longer `lead`, lets a beat event leave before the beat is heard).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from stream.errors import ConfigError


@dataclass(frozen=True)
class DecoderConfig:
    min_bpm: float = 55.0  # slowest beat tracked (BPM)
    max_bpm: float = 215.0  # fastest beat tracked (BPM)
    tempi: int = 64  # beat periods in the state space, log-spaced (fewer = faster, coarser)
    prior_bpm: float = 110.0  # centre of the log-normal tempo prior (BPM)
    prior_octaves: float = 0.8  # its standard deviation in octaves (large = flat)
    stiffness: float = 40.0  # [10, 200] cost of a period change per unit relative change, per beat
    jump: float = 0.02  # [0, 0.2] probability per beat of a jump to a tempo the tempogram supports
    beat_width: float = 12.0  # beat states = first 1/beat_width of the period (at least one frame)
    gain: float = 4.0  # [0.5, 20] log-likelihood ratio of a beat state per unit of observation above `bias`
    bias: float = 0.2  # [0, 0.8] observation at which a beat state is as likely as a non-beat one: weaker
    #                    evidence counts against a beat there (so the off-beats of double tempo cost)
    tempogram_s: float = 6.0  # tempogram memory (s of onset strength)
    tempogram_every: int = 10  # frames between tempogram updates
    tempogram_power: float = 1.0  # [0, 4] weight of the tempogram on the tempo transition (0 = ignore it)
    prior_power: float = 0.0  # [0, 2] weight of the tempo prior on every beat's transition (0 = only at the start
    #                           and on jumps)
    max_gap_s: float = 8.0  # s of missing observations the posterior is carried across; a longer gap starts over
    lead: int = 2  # frames before its phase 0 that a beat is emitted (and predicted)
    min_gap: float = 0.6  # fraction of the period that must separate two emitted beats

    def __post_init__(self) -> None:
        if not 20 <= self.min_bpm < self.max_bpm <= 400:
            raise ConfigError(f"decoder tempo range must satisfy 20 <= min_bpm < max_bpm <= 400, "
                              f"got {self.min_bpm}-{self.max_bpm}")
        if self.tempi < 2:
            raise ConfigError(f"decoder tempi must be >= 2, got {self.tempi}")
        if not 0 <= self.jump < 1:
            raise ConfigError(f"decoder jump must be in [0, 1), got {self.jump}")
        if self.lead < 0:
            raise ConfigError(f"decoder lead must be >= 0 frames, got {self.lead}")


@dataclass(frozen=True)
class StateSpace:
    """The flat (period, phase) states: period index and phase of each, and where each period starts/ends."""

    periods: np.ndarray  # [K] frames per beat
    period_of: np.ndarray  # [S] index into periods
    phase_of: np.ndarray  # [S] frames since the beat
    first: np.ndarray  # [K] state index of phase 0
    last: np.ndarray  # [K] state index of phase T-1
    beat: np.ndarray  # [S] indices of the beat states


def state_space(config: DecoderConfig, fps: float) -> StateSpace:
    lo, hi = 60.0 * fps / config.max_bpm, 60.0 * fps / config.min_bpm
    periods = np.unique(np.round(np.geomspace(lo, hi, config.tempi)).astype(int))
    period_of = np.repeat(np.arange(len(periods)), periods)
    first = np.concatenate([[0], np.cumsum(periods)[:-1]])
    phase_of = np.arange(len(period_of)) - first[period_of]
    beat = np.flatnonzero(phase_of < np.maximum(1, periods[period_of] / config.beat_width))
    return StateSpace(periods, period_of, phase_of, first, first + periods - 1, beat)


def tempo_prior(config: DecoderConfig, periods: np.ndarray, fps: float) -> np.ndarray:
    octaves = np.log2(60.0 * fps / periods / config.prior_bpm)
    p = np.exp(-0.5 * (octaves / config.prior_octaves) ** 2)
    return p / p.sum()


def drift_transitions(config: DecoderConfig, periods: np.ndarray) -> np.ndarray:
    """[K, K] row-stochastic: from period j to k with probability ~ exp(-stiffness * |T_k / T_j - 1|)."""
    ratio = periods[None, :] / periods[:, None]
    a = np.exp(-config.stiffness * np.abs(ratio - 1.0))
    return a / a.sum(axis=1, keepdims=True)


def tempogram(history: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """Salience of each period in a stretch of onset strength: autocorrelation at T plus half of it at 2T and
    T/2 (a short comb, so a period is supported by its multiples); non-negative, max 1 (uniform when flat)."""
    n = len(history)
    if np.isnan(history).any():  # frames of a gap: the autocorrelation of the frames heard
        heard = ~np.isnan(history)
        x = np.where(heard, history - history[heard].mean(), 0.0) if heard.any() else np.zeros(n)
        pairs = np.correlate(heard.astype(float), heard.astype(float), mode="full")[n - 1:]
        acf = np.correlate(x, x, mode="full")[n - 1:] / np.maximum(pairs, 1)
    else:
        x = history - history.mean()
        acf = np.correlate(x, x, mode="full")[n - 1:] / np.maximum(n - np.arange(n), 1)
    def at(lags):
        lags = np.asarray(np.round(lags), int)
        return np.where(lags < n, acf[np.minimum(lags, n - 1)], 0.0)
    s = np.maximum(at(periods) + 0.5 * at(2 * periods) + 0.5 * at(periods / 2), 0.0)
    return s / s.max() if s.max() > 0 else np.ones_like(s)


@dataclass
class DecoderState:
    alpha: np.ndarray  # [S] filtered posterior
    history: np.ndarray  # [W] recent observations for the tempogram (a ring: frame f at f % W)
    salience: np.ndarray  # [K] last tempogram
    transitions: np.ndarray  # [K, K] tempo transition under that tempogram
    frame: int = 0  # frames seen
    last_beat: float = -1e9  # frame (fractional) of the last emitted beat


@dataclass(frozen=True)
class BeatFrame:
    """A beat decided at frame `frame`: it falls `ahead` frames later (0 = now); period in frames."""

    frame: int
    ahead: int
    period: float
    strength: float  # posterior mass of the best period


class BeatDecoder:
    """Stateful step: `step(observations) -> beats`, observations in [0, 1] at `fps` frames per second."""

    def __init__(self, config: DecoderConfig | None = None, fps: float = 100.0) -> None:
        self.config = config or DecoderConfig()
        self.fps = fps
        self.space = state_space(self.config, fps)
        self.prior = tempo_prior(self.config, self.space.periods, fps)
        self.drift = drift_transitions(self.config, self.space.periods)
        self.reset()

    def reset(self) -> None:
        sp = self.space
        alpha = (self.prior / sp.periods)[sp.period_of]
        window = max(int(self.config.tempogram_s * self.fps), 2 * int(sp.periods.max()) + 1)
        salience = np.ones(len(sp.periods))
        self.state = DecoderState(alpha / alpha.sum(), np.zeros(window, np.float32), salience,
                                  self.tempo_transitions(salience))

    def tempo_transitions(self, salience: np.ndarray) -> np.ndarray:
        """The per-beat period transition given a tempogram: drift, or a jump to a supported tempo."""
        c = self.config
        weight = salience ** c.tempogram_power * (self.prior / self.prior.max()) ** c.prior_power
        target = self.prior * weight
        a = (1 - c.jump) * self.drift * weight[None, :] + c.jump * target / target.sum()
        return a / a.sum(axis=1, keepdims=True)

    def step(self, observations: np.ndarray) -> list[BeatFrame]:
        c, sp, s = self.config, self.space, self.state
        beats: list[BeatFrame] = []
        window = len(s.history)
        for o in np.asarray(observations, np.float32):
            missing = bool(np.isnan(o))  # no evidence (a gap): the posterior only moves on
            s.history[s.frame % window] = o
            if s.frame % c.tempogram_every == 0 and s.frame >= window // 4 and not missing:
                recent = np.roll(s.history, -(s.frame + 1) % window)[-min(s.frame + 1, window):]
                s.salience = tempogram(recent, sp.periods)
                s.transitions = self.tempo_transitions(s.salience)
            wrapped = s.alpha[sp.last] @ s.transitions
            alpha = np.empty_like(s.alpha)
            alpha[1:] = s.alpha[:-1]
            alpha[sp.first] = wrapped
            if not missing:
                alpha[sp.beat] *= np.exp(c.gain * (float(o) - c.bias))
            s.alpha = alpha / alpha.sum()
            best = int(np.argmax(s.alpha))
            period = int(sp.periods[sp.period_of[best]])
            ahead = (period - int(sp.phase_of[best])) % period
            if ahead <= c.lead and s.frame + ahead - s.last_beat >= c.min_gap * period:
                s.last_beat = s.frame + ahead
                mass = float(s.alpha[sp.period_of == sp.period_of[best]].sum())
                beats.append(BeatFrame(s.frame, ahead, float(period), mass))
            s.frame += 1
        return beats

    def skip_to(self, frame: int) -> None:
        """Observations up to `frame` are missing (a gap): carry the posterior across them, as the forward filter
        does with no evidence (the phase moves on at each period, tempo drifts), so the tracker is back in phase
        as soon as evidence comes again. Beats decided in the gap are not told. A gap longer than `max_gap_s`
        leaves no phase worth keeping: the posterior starts over from the prior."""
        s = self.state
        gap = frame - s.frame
        if gap > self.config.max_gap_s * self.fps:
            history, last_beat = s.history, s.last_beat
            self.reset()
            self.state.history, self.state.last_beat = history, last_beat
            s = self.state
        elif gap > 0:
            self.step(np.full(gap, np.nan, np.float32))
        s.history[(s.frame + np.arange(min(max(0, frame - s.frame), len(s.history)))) % len(s.history)] = np.nan
        s.frame = max(s.frame, frame)

    def state_dict(self) -> dict[str, Any]:
        """The posterior over (tempo, phase), the tempogram's input and the emission clock (~33 KB at 100 frames/s)."""
        s = self.state
        return {"alpha": s.alpha.copy(), "history": s.history.copy(), "salience": s.salience.copy(),
                "frame": s.frame, "last_beat": s.last_beat}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        alpha = np.asarray(state["alpha"], np.float64)
        if alpha.shape != self.state.alpha.shape:
            raise ValueError(f"decoder state has {alpha.shape[0]} states, this decoder {self.state.alpha.shape[0]}")
        salience = np.asarray(state["salience"], np.float64)
        self.state = DecoderState(alpha / alpha.sum(), np.asarray(state["history"], np.float32).copy(), salience,
                                  self.tempo_transitions(salience), int(state["frame"]), float(state["last_beat"]))

    def tempo(self) -> tuple[float, float]:
        """(BPM of the most probable period, its posterior mass)."""
        sp = self.space
        mass = np.bincount(sp.period_of, weights=self.state.alpha, minlength=len(sp.periods))
        k = int(np.argmax(mass))
        return 60.0 * self.fps / float(sp.periods[k]), float(mass[k])
