"""Voice activity: Silero probabilities per 32 ms chunk, turned into speech start/end times by hysteresis.

`SileroStream` carries the model's recurrent state and 64-sample context across pushes; `Hysteresis` is the
pure decision rule; `VoiceActivityDetector` joins them for the live node; `detect_speech` is the whole-file mode
(same numbers, same events, the encoder batched over all chunks).

Decision rule: a speech run opens when p >= onset and stays open while p >= offset; runs separated by less
than `min_silence` are merged; a merged region is announced (start event) once it has lasted `min_speech`,
and closed (end event, at the time the quiet began) after `min_silence` below offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nodes.capture.conform import check_model_audio
from nodes.vad.model import CHUNK, CONTEXT, HIDDEN, SAMPLE_RATE, silero_sequence, silero_step
from stream.errors import AudioError, ConfigError

Params = dict[str, Any]
CHUNK_SECONDS = CHUNK / SAMPLE_RATE  # 0.032 s per probability
_FILE_BLOCK = 256  # chunks per whole-file scan call (8.192 s): one compiled shape for any file length
_LIVE_STEPS = (8, 4, 3, 2, 1)  # chunks per live call, compiled at warm-up: a 100 ms block's 3-4 chunks in one call


@dataclass(frozen=True)
class VadConfig:
    """Hysteresis thresholds and durations (silero-vad's get_speech_timestamps defaults)."""

    onset: float = 0.5  # [0, 1] probability that opens speech
    offset: float = 0.35  # [0, onset] probability below which speech may close
    min_speech: float = 0.25  # s >= 0; shorter regions are never announced
    min_silence: float = 0.1  # s >= 0; shorter pauses are bridged
    sample_rate: int = SAMPLE_RATE  # Hz of the pushed audio; only 16000 is supported

    def __post_init__(self) -> None:
        if self.sample_rate != SAMPLE_RATE:
            raise ConfigError(f"VAD sample_rate must be {SAMPLE_RATE} Hz (resample first), got {self.sample_rate}")
        if not 0.0 <= self.offset <= self.onset <= 1.0:
            raise ConfigError(f"VAD needs 0 <= offset <= onset <= 1, got offset={self.offset}, onset={self.onset}")
        if self.min_speech < 0 or self.min_silence < 0:
            raise ConfigError(f"VAD min_speech and min_silence must be >= 0 s, got {self.min_speech}, {self.min_silence}")


class SpeechEvent(NamedTuple):
    kind: Literal["start", "end"]
    time: float  # s from the first sample of the stream


class HysteresisState(NamedTuple):
    active: bool = False  # inside a run (p stayed >= offset since it reached onset)
    region_start: float | None = None  # s; start of the current merged region
    quiet_since: float | None = None  # s; when the last run closed, while a pause is being timed
    announced: bool = False  # start event of the current region emitted


def hysteresis(
    config: VadConfig, state: HysteresisState, prob: float, t0: float, t1: float
) -> tuple[HysteresisState, list[SpeechEvent]]:
    """Advance the decision rule by one chunk [t0, t1) s of speech probability `prob`."""
    active, region_start, quiet_since, announced = state
    events: list[SpeechEvent] = []
    if active and prob < config.offset:
        active, quiet_since = False, t0
    elif not active and prob >= config.onset:
        active, quiet_since = True, None
        region_start = t0 if region_start is None else region_start
    if active and not announced and t1 - region_start >= config.min_speech - 1e-9:
        events.append(SpeechEvent("start", region_start))
        announced = True
    if not active and quiet_since is not None and t1 - quiet_since >= config.min_silence - 1e-9:
        if announced:
            events.append(SpeechEvent("end", quiet_since))
        region_start, quiet_since, announced = None, None, False
    return HysteresisState(active, region_start, quiet_since, announced), events


def close(state: HysteresisState, t_end: float) -> list[SpeechEvent]:
    """End of stream: close an announced region (at the pause start if one was being timed)."""
    if not state.announced:
        return []
    return [SpeechEvent("end", state.quiet_since if state.quiet_since is not None else t_end)]


def segments(events: list[SpeechEvent]) -> list[tuple[float, float]]:
    """Pair start/end events into (start, end) s speech regions."""
    starts = [e.time for e in events if e.kind == "start"]
    ends = [e.time for e in events if e.kind == "end"]
    return list(zip(starts, ends))


def check_audio(samples: np.ndarray, sample_rate: int, min_samples: int = 0) -> np.ndarray:
    """1-D float audio in [-1, 1] at 16 kHz, finite, at least `min_samples` long; else a clear AudioError."""
    x = np.asarray(samples)
    if x.ndim != 1:
        raise AudioError(f"VAD takes mono audio as a 1-D array, got shape {x.shape}: down-mix it")
    return check_model_audio(x, sample_rate, model="VAD", rate=SAMPLE_RATE, min_samples=min_samples)


_step = jax.jit(silero_step)  # one chunk: cheaper than a scan of one
_sequence = jax.jit(silero_sequence)


class SileroStream:
    """Speech probability of each completed 512-sample chunk; model state carried across pushes."""

    def __init__(self, params: Params) -> None:
        self._params = jax.device_put(params)
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, HIDDEN), np.float32)
        self.resume(0)

    def resume(self, lead: int) -> None:
        """Audio went missing: the samples not yet a chunk are dropped, and the next `lead` samples pushed are only
        the context of the first chunk after them. The recurrent state is kept: no state can be what an unharmed
        model's became on the missed audio, and the kept one stays closer to it than a fresh one (AMI dev00 and
        dev01, 12 gaps of 0.5-3.8 s: 8 of 158 later decisions off by a chunk or more, fresh state 29)."""
        self._pending = np.zeros(CONTEXT, np.float32)  # context of the next chunk + samples not yet a chunk
        self._lead = lead

    def warmup(self) -> None:
        """Compile every live call shape now, not on live chunks (runs silent chunks, then resets)."""
        for steps in _LIVE_STEPS:
            self.push(np.zeros(steps * CHUNK, np.float32))
        self.reset()

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Append mono 16 kHz float samples; returns the probabilities of the chunks they completed.

        The completed chunks go through the model in as few calls as `_LIVE_STEPS` allows: a call costs about the
        same for 1 or 4 chunks (dispatch, not arithmetic): for 100 ms blocks 2.2x less CPU than a call per chunk,
        the same probabilities."""
        x = check_audio(samples, SAMPLE_RATE)
        lead, self._lead = min(self._lead, len(x)), self._lead - min(self._lead, len(x))
        self._pending = np.concatenate([self._pending, x])[lead:]  # lead samples: context, no chunk of their own
        count = max(0, (len(self._pending) - CONTEXT) // CHUNK)
        if count == 0:
            return np.zeros(0, np.float32)
        frames = np.lib.stride_tricks.sliding_window_view(self._pending, CONTEXT + CHUNK)[::CHUNK][:count]
        probs, done = [], 0
        while done < count:
            steps = next(n for n in _LIVE_STEPS if n <= count - done)
            call = _step if steps == 1 else _sequence
            prob, state = call(self._params, jnp.asarray(frames[done : done + steps]), self._state)
            self._state = np.asarray(state)
            probs.append(np.asarray(prob))
            done += steps
        self._pending = self._pending[count * CHUNK :]
        return np.concatenate(probs)  # float32, as the model returns them

    def flush(self) -> np.ndarray:
        """Zero-pad the last partial chunk (if any) and return its probability, as the whole-file mode does."""
        partial = len(self._pending) - CONTEXT
        return self.push(np.zeros(CHUNK - partial, np.float32)) if partial > 0 else np.zeros(0, np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {"state": self._state.copy(), "pending": self._pending.copy(), "lead": self._lead}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._state = np.asarray(state["state"], np.float32).copy()
        self._pending = np.asarray(state["pending"], np.float32).copy()
        self._lead = int(state.get("lead", 0))  # absent: a checkpoint from before the grid was kept across gaps


class VoiceActivityDetector:
    """Live VAD block: `push(samples)` -> (chunk probabilities, speech start/end events); `flush()` at the end."""

    def __init__(self, params: Params, config: VadConfig = VadConfig()) -> None:
        self.config = config
        self._model = SileroStream(params)
        self.reset()

    def reset(self) -> None:
        self._model.reset()
        self._decision = HysteresisState()
        self._chunks = 0  # chunks decided so far: the stream clock, in units of 32 ms

    def warmup(self) -> None:
        """Compile before the first push (it resets the model state)."""
        self._model.warmup()

    def _decide(self, probs: np.ndarray) -> list[SpeechEvent]:
        events = []
        for prob in probs:
            t0 = self._chunks * CHUNK_SECONDS
            self._decision, new = hysteresis(self.config, self._decision, float(prob), t0, t0 + CHUNK_SECONDS)
            events += new
            self._chunks += 1
        return events

    def push(self, samples: np.ndarray) -> tuple[np.ndarray, list[SpeechEvent]]:
        probs = self._model.push(samples)
        return probs, self._decide(probs)

    def skip_to(self, sample: int) -> list[SpeechEvent]:
        """Audio lost upstream, the next sample pushed is the stream's `sample`: close speech that was open when it
        went missing (at the gap's start), then go on with the model's state on the stream's chunk grid (chunk i
        = samples [512 i, 512 i + 512) of the stream, as an unharmed detector cuts them: the samples before the
        next chunk edge are only context). Counting chunks from `sample` instead put every later decision on
        other audio than an unharmed detector's, up to a chunk early (bench/faults.py, vad kill)."""
        events = close(self._decision, self._chunks * CHUNK_SECONDS)
        self._chunks = -(-sample // CHUNK)  # the first whole chunk at or after `sample`
        self._model.resume(self._chunks * CHUNK - sample)
        self._decision = HysteresisState()
        return events

    def flush(self) -> tuple[np.ndarray, list[SpeechEvent]]:
        """End of stream: decide the zero-padded last chunk and close open speech at the end of the audio."""
        probs = self._model.flush()
        events = self._decide(probs)
        return probs, events + close(self._decision, self._chunks * CHUNK_SECONDS)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self._model.state_dict(), "decision": tuple(self._decision), "chunks": self._chunks}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._model.load_state_dict(state["model"])
        self._decision = HysteresisState(*state["decision"])
        self._chunks = int(state["chunks"])


def speech_probabilities(params: Params, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """[ceil(samples / 512)] speech probability per 32 ms chunk of a whole file (last chunk zero-padded)."""
    x = check_audio(audio, sample_rate, min_samples=CHUNK)
    count = -(-len(x) // CHUNK)
    padded = np.zeros(CONTEXT + count * CHUNK, np.float32)
    padded[CONTEXT : CONTEXT + len(x)] = x
    frames = np.lib.stride_tricks.sliding_window_view(padded, CONTEXT + CHUNK)[::CHUNK][:count]
    params = jax.device_put(params)
    state, probs = jnp.zeros((2, 1, HIDDEN), jnp.float32), []
    for first in range(0, count, _FILE_BLOCK):
        block = np.zeros((_FILE_BLOCK, CONTEXT + CHUNK), np.float32)
        block[: min(_FILE_BLOCK, count - first)] = frames[first : first + _FILE_BLOCK]
        block_probs, state = _sequence(params, jnp.asarray(block), state)  # zero padding only in the last block
        probs.append(np.asarray(block_probs))
    return np.concatenate(probs)[:count]


def detect_speech(
    params: Params, audio: np.ndarray, config: VadConfig = VadConfig()
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Whole-file VAD: (probability per 32 ms chunk, speech regions as (start, end) s)."""
    probs = speech_probabilities(params, audio, config.sample_rate)
    state, events = HysteresisState(), []
    for i, prob in enumerate(probs):
        state, new = hysteresis(config, state, float(prob), i * CHUNK_SECONDS, (i + 1) * CHUNK_SECONDS)
        events += new
    return probs, segments(events + close(state, len(probs) * CHUNK_SECONDS))
