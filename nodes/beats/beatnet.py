"""BeatNet's CRNN (Heydari, Cwitkowitz & Duan, ISMIR 2021) in JAX, with its front end, streamed frame by frame.

Front end (as BeatNet's `log_spect.py` builds it from madmom): 22.05 kHz audio, frames of 1411 samples (64 ms)
centred every 441 samples (50 frames/s), Hann window, |FFT| of the first 705 bins, madmom's logarithmic triangular
filterbank (24 bands per octave, 30 Hz - 17 kHz, unique bins, filters normalised to area one; 136 bands),
log10(1 + x), and the positive first-order difference stacked beside it: 272 values per frame.

Model (BeatNet `model.py`): per frame, Conv1d(1 -> 2, kernel 10) over the 272 features, ReLU, max-pool 2,
Linear(262 -> 150); a 2-layer unidirectional LSTM (150 cells) across frames; Linear(150 -> 3) and a softmax:
(beat, downbeat, no beat). Causal in the model; the centred frames look 32 ms ahead, which the decoder's beat
prediction absorbs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path

import numpy as np

from nodes.beats.onset import RATE

FRAME, HOP, BINS = 1411, 441, 705
LSTM_CELLS = 150
WINDOW = np.hanning(FRAME).astype(np.float32)
TUNED = Path(__file__).with_name("beatnet_tuned.npz")  # BeatNet model 1 fine-tuned here (README.md beside it)


@dataclass(frozen=True)
class BeatNetFrontEndConfig:
    fps: float = RATE / HOP  # 50 frames per second


def log_filterbank(bands_per_octave: int = 24, fmin: float = 30.0, fmax: float = 17000.0,
                   fref: float = 440.0) -> np.ndarray:
    """[705, 136] madmom's LogarithmicFilterbank for BeatNet's STFT (bin k at k * 22050 / 1410 Hz, as madmom)."""
    bin_freqs = np.fft.fftfreq(BINS * 2, 1.0 / RATE)[:BINS]
    left = np.floor(np.log2(fmin / fref) * bands_per_octave)
    right = np.ceil(np.log2(fmax / fref) * bands_per_octave)
    freqs = fref * 2.0 ** (np.arange(left, right) / bands_per_octave)
    freqs = freqs[np.searchsorted(freqs, fmin):]
    freqs = freqs[:np.searchsorted(freqs, fmax, "right")]
    idx = np.clip(bin_freqs.searchsorted(freqs), 1, BINS - 1)
    idx -= freqs - bin_freqs[idx - 1] < bin_freqs[idx] - freqs  # the nearest bin
    bins = np.unique(idx)
    bank = np.zeros((BINS, len(bins) - 2))
    for band, (start, center, stop) in enumerate(zip(bins[:-2], bins[1:-1], bins[2:])):
        if stop - start < 2:
            center, stop = start, start + 1
        tri = np.concatenate([np.linspace(0, 1, center - start, endpoint=False),
                              np.linspace(1, 0, stop - center, endpoint=False)])
        bank[start:stop, band] = np.maximum(bank[start:stop, band], tri / tri.sum())
    return bank.astype(np.float32)


def features(frames: np.ndarray, filters: np.ndarray, previous: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """[n, 1411] frames -> [n, 272] features, given the log spectrum of the frame before the first (None at the
    start of a stream: the first difference is zero, as madmom's). Returns (features, last log spectrum)."""
    spec = np.abs(np.fft.rfft(frames * WINDOW, axis=1)[:, :BINS])  # rfft: the same bins, half the work
    logspec = np.log10(spec.astype(np.float32) @ filters + 1.0)
    before = np.concatenate([(logspec[0] if previous is None else previous)[None], logspec[:-1]])
    return np.hstack([logspec, np.maximum(logspec - before, 0)]).astype(np.float32), logspec[-1]


def clip_features(x: np.ndarray, filters: np.ndarray | None = None) -> np.ndarray:
    """[n, 272] features of a whole clip of 22.05 kHz samples, frame for frame what the streamed front end computes
    (frame k centred on sample k * HOP, zeros before the start and after the end): training and offline use."""
    x = np.asarray(x, np.float32)
    n = -(-len(x) // HOP)
    padded = np.concatenate([np.zeros(FRAME // 2, np.float32), x, np.zeros(FRAME, np.float32)])
    index = np.arange(FRAME)[None, :] + HOP * np.arange(n)[:, None]
    return features(padded[index], log_filterbank() if filters is None else filters, None)[0]


def weights(mode: str, model: int = 1):
    """The CRNN weights of a beats mode: "crnn" = BeatNet's model 1-3 (converted from ../shared/models/beatnet/),
    "crnn-tuned" = the fine-tuned weights shipped beside this file (one load per process)."""
    if mode == "crnn-tuned":
        return _tuned()
    from stream.models import load_params

    return load_params(f"beatnet-{model}")


@cache
def _tuned():
    from stream.errors import ModelError
    from stream.models import unflatten

    if not TUNED.is_file():
        raise ModelError(f"{TUNED} is missing: regenerate it with bench/train_beats.py (nodes/beats/README.md)")
    with np.load(TUNED) as data:
        return unflatten({k: data[k] for k in data.files})


def init_lstm_state():
    import jax.numpy as jnp

    return jnp.zeros((2, 2, LSTM_CELLS), jnp.float32)  # [layer, (h, c), cells]


def crnn(params, x, state):
    """[n, 272] features, LSTM state [2, 2, 150] -> ([n, 3] softmax (beat, downbeat, none), new state)."""
    import jax
    import jax.numpy as jnp

    w = params["conv1"]["weight"][:, 0, :]  # [2, 10]
    windows = jnp.stack([x[:, k:k + x.shape[1] - 9] for k in range(10)], axis=-1)  # [n, 263, 10]
    conv = jax.nn.relu(jnp.einsum("nfk,ck->ncf", windows, w) + params["conv1"]["bias"][None, :, None])
    pooled = jnp.maximum(conv[:, :, 0:262:2], conv[:, :, 1:263:2]).reshape(x.shape[0], -1)  # [n, 2 * 131]
    h = pooled @ params["linear0"]["weight"].T + params["linear0"]["bias"]

    def layer(name, inputs, hc, cc):
        """One LSTM layer over all frames: the input projection as one matrix product, only the recurrence in
        the scan (what makes training on long crops affordable)."""
        p = params["lstm"][name]
        projected = inputs @ p["w_ih"].T + p["b_ih"] + p["b_hh"]

        def step(carry, gin):
            hc, cc = carry
            i, f, g, o = jnp.split(gin + hc @ p["w_hh"].T, 4, axis=-1)
            cc = jax.nn.sigmoid(f) * cc + jax.nn.sigmoid(i) * jnp.tanh(g)
            hc = jax.nn.sigmoid(o) * jnp.tanh(cc)
            return (hc, cc), hc

        (hc, cc), ys = jax.lax.scan(step, (hc, cc), projected)
        return ys, jnp.stack([hc, cc])

    y0, s0 = layer("0", h, state[0, 0], state[0, 1])
    ys, s1 = layer("1", y0, state[1, 0], state[1, 1])
    logits = ys @ params["linear"]["weight"].T + params["linear"]["bias"]
    return jax.nn.softmax(logits, axis=-1), jnp.stack([s0, s1])


def bucket(n: int) -> int:
    """Frames per jitted call: the next power of two (1, 2, 4, ...), so a stream compiles a handful of shapes."""
    return 1 << max(0, (n - 1).bit_length())


def _scan(params, x, state, valid):
    """`crnn` frame by frame over a padded bucket; the state after the last valid frame."""
    import jax
    import jax.numpy as jnp

    def one(carry, inp):
        frame, keep = inp
        out, new = crnn(params, frame[None], carry)
        return jnp.where(keep, new, carry), out[0]

    state, out = jax.lax.scan(one, state, (x, valid))
    return out, state


_COMPILED: dict[int, tuple] = {}  # id(params) -> (params, jitted step): one compilation per weight set


def compiled(params):
    """`_scan` jitted with the weights closed over (as constants a call costs ~0.13 ms instead of ~0.28 ms of CPU
    per frame: the step runs 50 times a second per stream)."""
    import jax

    held = _COMPILED.get(id(params))
    if held is None or held[0] is not params:
        held = _COMPILED[id(params)] = (params, jax.jit(partial(_scan, params)))
    return held[1]


class BeatNetFrontEnd:
    """Stateful step for `BeatTracker`: 22.05 kHz samples -> [n, 2] (beat, downbeat) activations at 50 frames/s."""

    def __init__(self, params) -> None:
        # one frame per call: XLA's intra-op threads only add synchronisation (CPU RTF 0.036 -> 0.024 measured);
        # takes effect when this is the process's first use of JAX (a node process, `stream beats`)
        os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
        if params is None:
            params = weights("crnn")
        self.params = params
        self.config = BeatNetFrontEndConfig()
        self.filters = log_filterbank()
        self.reset()

    def reset(self) -> None:
        self.buffer = np.zeros(FRAME // 2, np.float32)  # frame 0 is centred on sample 0: zeros before it
        self.logspec: np.ndarray | None = None  # last frame's log spectrum
        self.state = init_lstm_state()
        self.frames = 0  # frames produced
        self.samples = 0  # samples pushed

    def frame_time(self, index: int) -> float:
        return index * HOP / RATE

    def heard_at(self, index: int) -> float:
        """Seconds of the stream heard when frame `index` is complete: the end of its window."""
        return (index * HOP + FRAME - FRAME // 2) / RATE

    def resume(self, sample: int) -> int:
        """Audio went missing: the next sample pushed is the stream's `sample`. Frames stay on the stream's grid
        (frame k centred on sample k * HOP), the samples before the first one's window are zeros, as at a stream's
        start, and the LSTM state is kept. Returns the index of the next frame."""
        index = -(-sample // HOP)
        self.buffer = np.zeros(FRAME // 2 - (index * HOP - sample), np.float32)
        self.logspec, self.frames, self.samples = None, index, sample
        return index

    def state_dict(self) -> dict:
        return {"lstm": np.asarray(self.state), "frames": self.frames}

    def load_state_dict(self, state: dict) -> None:
        import jax.numpy as jnp

        self.state, self.frames = jnp.asarray(state["lstm"], jnp.float32), int(state["frames"])

    def warm_up(self, sizes: tuple[int, ...] = (1, 2, 4)) -> None:
        """Compile the buckets a live stream uses, before the first block (state untouched)."""
        import jax.numpy as jnp

        for n in sizes:
            compiled(self.params)(jnp.zeros((n, 272), jnp.float32), self.state, jnp.zeros(n, bool))

    def push(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        self.samples += len(samples)
        x = np.concatenate([self.buffer, np.asarray(samples, np.float32)])
        if last:  # madmom's frames run while their centre is inside the signal, zero-padded on the right
            x = np.concatenate([x, np.zeros(FRAME, np.float32)])
            n = -(-self.samples // HOP) - self.frames
        else:
            n = max(0, (len(x) - FRAME) // HOP + 1)
        if n <= 0:
            self.buffer = x
            return np.zeros((0, 2), np.float32)
        index = np.arange(FRAME)[None, :] + HOP * np.arange(n)[:, None]
        feats, self.logspec = features(x[index], self.filters, self.logspec)
        self.buffer = x[n * HOP:]
        size = bucket(n)
        padded = np.zeros((size, feats.shape[1]), np.float32)
        padded[:n] = feats
        out, self.state = compiled(self.params)(padded, self.state, np.arange(size) < n)
        self.frames += n
        return np.asarray(out)[:n, :2]
