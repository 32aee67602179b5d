"""Chunked feature extraction whose outputs concatenate to exactly the offline `kaldi.fbank` / `kaldi.mfcc`.

With snip_edges framing a frame depends only on its own 25 ms of audio, so the state between chunks is just the
samples not yet consumed by a whole frame (at most one frame length). Frame `i` always starts at sample
`i * frame_shift` of the stream, whatever the chunk sizes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nodes.features.kaldi import FbankConfig, MfccConfig, check_wave, fbank_frames, frames, mfcc_frames


class StreamingFeatures:
    """Push audio chunks, get the feature frames they complete: `feats = sf(chunk)`; `[0, dim]` if none."""

    def __init__(self, cfg: FbankConfig | MfccConfig = FbankConfig()) -> None:
        self.cfg = cfg
        self._frame_cfg = cfg.fbank if isinstance(cfg, MfccConfig) else cfg
        self.reset()

    @property
    def dim(self) -> int:
        return self.cfg.num_ceps if isinstance(self.cfg, MfccConfig) else self.cfg.num_mel_bins

    def reset(self) -> None:
        """Forget buffered audio (a new stream starts at sample 0)."""
        self._pending = np.zeros(0, dtype=np.float32)
        self.frames_out = 0  # frames emitted so far: frame i covers samples [i*shift, i*shift + length)

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        audio = np.concatenate([self._pending, check_wave(chunk)])
        framed = frames(audio, self._frame_cfg)
        self._pending = audio[len(framed) * self._frame_cfg.frame_shift :]
        self.frames_out += len(framed)
        if isinstance(self.cfg, MfccConfig):
            return mfcc_frames(framed, self.cfg)
        return fbank_frames(framed, self.cfg)

    def state_dict(self) -> dict[str, Any]:
        return {"pending": self._pending.copy(), "frames_out": self.frames_out}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pending = np.asarray(state["pending"], dtype=np.float32)
        self.frames_out = int(state["frames_out"])
