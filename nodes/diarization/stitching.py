"""Stitching consecutive windows by their overlap, so most windows need no speaker embedding.

Consecutive windows share ``duration - step`` seconds (7.5 of 8 s by default). A local speaker of the new window
whose activity over that overlap matches a local speaker of the previous window (intersection over union of
active frames >= ``MIN_IOU`` and at least ``MIN_SHARED_S`` seconds in common) is the same voice, so it inherits
that speaker's global label. A window with nobody active needs no embedding; otherwise it needs them only when one of its active local speakers continues
nobody (someone starts talking) or every ``embed_every`` windows (to keep checking the labels and moving the
centroids). The decision depends on segmentation alone, so file mode can plan a whole batch before embedding it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

MIN_IOU = 0.5  # overlap agreement for two local speakers of consecutive windows to be the same voice
MIN_SHARED_S = 0.5  # s of common activity needed as well


def continuations(prev: np.ndarray, cur: np.ndarray, shift: int, resolution: float) -> dict[int, int]:
    """Current local speaker -> previous local speaker it continues (one-to-one).

    ``prev`` and ``cur`` are [frames, local] activities of consecutive windows on the grid, ``shift`` frames apart.
    """
    a, b = prev[shift:] >= 0.5, cur[: len(cur) - shift] >= 0.5
    shared = (b[:, :, None] & a[:, None, :]).sum(axis=0).astype(float)  # [cur local, prev local]
    union = (b[:, :, None] | a[:, None, :]).sum(axis=0)
    ok = (shared >= MIN_SHARED_S / resolution) & (shared >= MIN_IOU * np.maximum(union, 1))
    rows, cols = linear_sum_assignment(-shared)
    return {int(r): int(c) for r, c in zip(rows, cols) if ok[r, c]}


@dataclass(frozen=True)
class Plan:
    """Whether a window needs embeddings, and which of its local speakers continue the previous window's."""

    embed: bool
    continues: dict[int, int]


class EmbeddingPlanner:
    """Stateful block: ``__call__(activity[frames_per_window, local]) -> Plan`` for each window in order."""

    def __init__(self, embed_every: int, tau_active: float, shift: int, resolution: float) -> None:
        self.embed_every = embed_every
        self.tau_active = tau_active
        self.shift = shift
        self.resolution = resolution
        self.reset()

    def reset(self) -> None:
        self.previous: np.ndarray | None = None
        self.since = 0  # windows since the last embedded one

    def __call__(self, activity: np.ndarray) -> Plan:
        active = np.flatnonzero(activity.max(axis=0) >= self.tau_active)
        continues = ({} if self.previous is None
                     else continuations(self.previous, activity, self.shift, self.resolution))
        self.previous = activity
        embed = active.size > 0 and (self.since + 1 >= self.embed_every
                                     or any(int(s) not in continues for s in active))
        self.since = 0 if embed else self.since + 1
        return Plan(embed, continues)

    def state_dict(self) -> dict[str, Any]:
        return {"previous": None if self.previous is None else self.previous.copy(), "since": self.since}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.previous = None if state["previous"] is None else np.asarray(state["previous"], np.float32)
        self.since = int(state["since"])
