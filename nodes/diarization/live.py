"""The live path for one stream: audio blocks in, per-window diarisation steps out, one window at a time.

This is what the graph's diarisation node wraps (models with batch 1, called as each window completes); file
mode (`files.diarize_file`) runs the same steps with the model calls batched, and must give the same output.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nodes.diarization.pipeline import DiarizationConfig, OnlineDiarizer, Step, WindowBuffer
from nodes.diarization.windows import WindowAnalyzer


class LiveDiarizer:
    """``push(samples 16 kHz mono float32) -> [Step]``; ``finish() -> [Step]`` at the end of the stream."""

    def __init__(self, analyzer: WindowAnalyzer, config: DiarizationConfig,
                 enrolled: dict[str, np.ndarray] | None = None, keep_windows: bool = False) -> None:
        self.analyzer = analyzer
        self.buffer = WindowBuffer(config.geometry)
        self.diarizer = OnlineDiarizer(config, enrolled, keep_windows)

    def warmup(self) -> None:
        """Compile both models for one window now, not on the first live window."""
        window = np.zeros((1, self.buffer.window), np.float32)
        _, activity = self.analyzer.segment(window)
        self.analyzer.embed(window, activity, [0])

    def push(self, samples: np.ndarray) -> list[Step]:
        return self._run(self.buffer.push(samples))

    def finish(self) -> list[Step]:
        """End of stream: the last windows (silence-padded to a whole step), pending frames, open turns closed."""
        return self._run(self.buffer.flush()) + [self.diarizer.finish(self.buffer.duration)]

    def _run(self, windows: list[np.ndarray]) -> list[Step]:
        steps = []
        for window in windows:
            grid, activity = self.analyzer.segment(window[None])
            plan = self.diarizer.plan(grid[0])
            padding = [self.buffer.padding(self.diarizer.windows)]
            embeddings = self.analyzer.embed(window[None], activity, padding)[0] if plan.embed else None
            steps.append(self.diarizer(grid[0], embeddings, plan))
        return steps

    @property
    def labels(self) -> list[str]:
        return self.diarizer.labels

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": self.buffer.buffer.copy(), "samples": self.buffer.samples,
                "diarizer": self.diarizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.buffer.buffer = np.asarray(state["buffer"], np.float32).copy()
        self.buffer.samples = int(state["samples"])
        self.diarizer.load_state_dict(state["diarizer"])
