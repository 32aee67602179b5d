"""Turn edges -> the user-facing events ``speaker.active`` (a speaker starts/stops) and ``speaker.turn`` (a
finished turn), as in ``stream/schemas/``. Times: ``t_audio`` in stream seconds, capture/publish in Unix seconds.
"""

from __future__ import annotations

from typing import Any

from nodes.diarization.turns import TurnEdge


def edge_events(edge: TurnEdge, label: str, stream: str, t_capture: float, t_publish: float,
                node: str = "diarize") -> list[dict[str, Any]]:
    """``speaker.active`` for every edge, plus ``speaker.turn`` when a turn closes.

    ``t_capture`` is when the audio at ``edge.t`` was captured.
    """
    common = {"stream": stream, "t_audio": edge.t, "t_capture": t_capture, "t_publish": t_publish, "node": node,
              "label": label, "confidence": min(1.0, max(0.0, edge.confidence))}
    events = [{"type": "speaker.active", **common, "active": edge.kind == "start", "start": edge.start}]
    if edge.kind == "stop":
        events.append({"type": "speaker.turn", **common, "t_audio": edge.start,
                       "t_capture": t_capture - (edge.t - edge.start), "start": edge.start, "stop": edge.t})
    return events
