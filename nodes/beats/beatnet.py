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
import scipy.fft

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
    spec = np.abs(scipy.fft.rfft(frames * WINDOW, axis=1)[:, :BINS])  # scipy's stays in float32: 30 % faster
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


def encode(params, x):
    """[n, 272] features -> [n, 150] LSTM inputs: the convolution, ReLU, max-pool 2, linear. The convolution is
    written as ten shifted multiply-adds, which XLA fuses into one loop that a streamed frame runs inline on the
    calling thread; as ten slices and a contraction XLA ran it on its thread pool, which cost twice the CPU."""
    import jax

    n, w = x.shape[0], params["conv1"]["weight"][:, 0, :]  # [2, 10]
    conv = sum(w[None, :, k, None] * x[:, None, k:k + 263] for k in range(10))  # [n, 2, 263]
    out = jax.nn.relu(conv + params["conv1"]["bias"][None, :, None])
    pooled = jax.numpy.maximum(out[:, :, 0:262:2], out[:, :, 1:263:2]).reshape(n, -1)  # [n, 2 * 131]
    return pooled @ params["linear0"]["weight"].T + params["linear0"]["bias"]


def lstm_cell(p, gates_in, hc, cc):
    """One LSTM step given the input's projection (`gates_in` = x W_ih^T + b_ih + b_hh): the new (h, c)."""
    import jax
    import jax.numpy as jnp

    i, f, g, o = jnp.split(gates_in + hc @ p["w_hh"].T, 4, axis=-1)
    cc = jax.nn.sigmoid(f) * cc + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(cc), cc


def project(p, h):
    """[n, inputs] -> [n, 4 * 150]: an LSTM layer's input projection for all frames at once (outside the
    recurrence)."""
    return h @ p["w_ih"].T + p["b_ih"] + p["b_hh"]


def classify(params, h):
    """[n, 150] last LSTM layer's outputs -> [n, 3] softmax (beat, downbeat, none)."""
    import jax

    return jax.nn.softmax(h @ params["linear"]["weight"].T + params["linear"]["bias"], axis=-1)


def crnn(params, x, state):
    """[n, 272] features, LSTM state [2, 2, 150] -> ([n, 3] softmax (beat, downbeat, none), new state). Whole
    sequences (training, parity): each LSTM layer's input projection is one matrix product, only the recurrence
    is scanned."""
    import jax
    import jax.numpy as jnp

    def layer(name, inputs, hc, cc):
        p = params["lstm"][name]

        def step(carry, gin):
            carry = lstm_cell(p, gin, *carry)
            return carry, carry[0]

        (hc, cc), ys = jax.lax.scan(step, (hc, cc), project(p, inputs))
        return ys, jnp.stack([hc, cc])

    h = encode(params, x)
    y0, s0 = layer("0", h, state[0, 0], state[0, 1])
    ys, s1 = layer("1", y0, state[1, 0], state[1, 1])
    return classify(params, ys), jnp.stack([s0, s1])


STEP_FRAMES = (1, 2, 4)  # frames per streamed call: a 20 ms block brings 0-2; more are fed four at a time


def stream_step(params, x, state, valid):
    """`crnn` for a few frames, unrolled (no loop for XLA to hand to its thread pool): [k, 272] features, state,
    [k] which frames are real -> ([k, 3] softmax, the state after the last real frame)."""
    import jax.numpy as jnp

    h = encode(params, x)
    new = []
    for layer in range(2):
        p = params["lstm"][str(layer)]
        gates_in = project(p, h)
        hc, cc = state[layer, 0], state[layer, 1]
        outs = []
        for t in range(x.shape[0]):
            h_t, c_t = lstm_cell(p, gates_in[t], hc, cc)
            hc, cc = jnp.where(valid[t], h_t, hc), jnp.where(valid[t], c_t, cc)
            outs.append(h_t)
        h = jnp.stack(outs)
        new.append(jnp.stack([hc, cc]))
    return classify(params, h), jnp.stack(new)


_COMPILED: dict[int, tuple] = {}  # id(params) -> (params, jitted step): one compilation per weight set


def compiled(params):
    """`stream_step` jitted with the weights closed over (as constants a call costs about half the CPU of the
    same call with the weights as arguments: the step runs 50 times a second per stream)."""
    import jax

    held = _COMPILED.get(id(params))
    if held is None or held[0] is not params:
        held = _COMPILED[id(params)] = (params, jax.jit(partial(stream_step, params)))
    return held[1]


class BeatNetFrontEnd:
    """Stateful step for `BeatTracker`: 22.05 kHz samples -> [n, 2] (beat, downbeat) activations at 50 frames/s."""

    def __init__(self, params) -> None:
        # one frame per call: XLA's intra-op threads only add synchronisation (CPU RTF 0.036 -> 0.024 measured);
        # takes effect when this is the process's first use of JAX (a node process, `stream beats`)
        os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
        import jax

        # a 0.1 ms step is cheaper run by the caller than handed to JAX's dispatch thread and waited for
        # (0.19-0.21 -> 0.08-0.09 ms of CPU per frame measured); every call here waits for its result anyway
        jax.config.update("jax_cpu_enable_async_dispatch", False)
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

    def warm_up(self) -> None:
        """Compile the step's shapes before the first block (state untouched)."""
        for k in STEP_FRAMES:
            compiled(self.params)(np.zeros((k, 272), np.float32), self.state, np.zeros(k, bool))

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
        step, outs = compiled(self.params), []
        for start in range(0, n, STEP_FRAMES[-1]):
            chunk = feats[start:start + STEP_FRAMES[-1]]
            k = next(size for size in STEP_FRAMES if size >= len(chunk))
            padded = np.zeros((k, feats.shape[1]), np.float32)
            padded[:len(chunk)] = chunk
            out, self.state = step(padded, self.state, np.arange(k) < len(chunk))
            outs.append(np.asarray(out)[:len(chunk), :2])
        self.frames += n
        return np.concatenate(outs)
