"""`diarize_file_at`: several latencies from one pass of the models give what separate runs give.

bench/diarization_der.py scores online 0.5 / 2 / 5 s and the refinement from one model pass per file; this guards
that sharing on one AMI clip (trn06, 30 s, 3 speakers): the 5 s output and the refinement equal a plain
`diarize_file` run at 5 s, turn for turn.
"""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from nodes.diarization.files import diarize_file, diarize_file_at
from stream.commands.diarize import build
from stream.errors import ConfigError


def test_latencies_share_one_model_pass(data):
    clip = data / "diarization" / "ami" / "trn06.flac"
    config, analyzer, _ = build(argparse.Namespace(latency=0.5, max_speakers=None, enrolled=None))
    at5 = dataclasses.replace(config, geometry=dataclasses.replace(config.geometry, latency=5.0))
    fast, slow = diarize_file_at(clip, analyzer, [config, at5], refine=True)
    alone = diarize_file(clip, analyzer, at5, refine=True)
    assert slow.turns == alone.turns and len({t.label for t in alone.turns}) >= 2
    assert fast.refined == alone.refined and slow.refined is None
    assert fast.turns != slow.turns  # the latencies do differ
    with pytest.raises(ConfigError, match="share window"):
        diarize_file_at(clip, analyzer, [config, dataclasses.replace(config, embed_every=2)])
