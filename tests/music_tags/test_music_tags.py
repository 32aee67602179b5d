"""Music tags: YAMNet's AudioSet music classes over real audio, through the node.

Guards: on "Help!" (0-16 s) every 5.28 s span is music (mean Music score >= 0.5, measured 0.78-0.90) with a
happy or exciting mood on top (YAMNet's genre scores there are weak, 0.02-0.05, and wander between soul, ska and
independent music, so the genre is not asserted); on 16 s of AMI meeting speech no span is music (genre and mood
"none", measured Music <= 0.001); every event matches its schema; bad input and bad config are refused.
"""

from __future__ import annotations

import asyncio

import jsonschema
import numpy as np
import pytest

from nodes.capture.files import read_blocks
from nodes.music_tags.node import MusicTagsNode
from nodes.music_tags.tags import GENRES, TagIndex
from stream.errors import ConfigError, MessageError, ModelError
from stream.message import Message
from stream.node import parse_config
from stream.schemas import schema



@pytest.fixture(scope="module")
def node():
    n = MusicTagsNode()
    asyncio.run(n.setup())
    return n


def tags_of(node: MusicTagsNode, path, stream: str, seconds: float = 16.0) -> list[dict]:
    """The node's events for the first `seconds` of a file, in 0.5 s pcm messages."""
    audio = np.concatenate(list(read_blocks(path, 16000)))[:round(seconds * 16000)]

    async def go() -> list[Message]:
        out = []
        for k in range(0, len(audio), 8000):
            out += await node.process(Message.new(stream, "pcm", audio[k:k + 8000], sr=16000,
                                                  t_capture_ns=k * 62500, t_wall=k / 16000))
        return out
    return [m.header.meta for m in asyncio.run(go())]


def test_beatles_is_happy_music_and_speech_is_not_music(node, data):
    music = tags_of(node, data / "music" / "audio" / "beatles_help.flac", "help")
    speech = tags_of(node, data / "diarization" / "ami" / "trn03.flac", "ami")
    assert len(music) == 3 and len(speech) == 3  # 16 s in 5.28 s spans
    for e in music + speech:
        jsonschema.validate(e, schema("music.tags"))
    assert all(e["music"] >= 0.5 and e["genre"] in GENRES and e["mood"] in ("Happy music", "Exciting music")
               for e in music), music
    assert all(e["genre"] == "none" and e["mood"] == "none" and e["genres"] == [] for e in speech), speech


def test_bad_input_and_config(node):
    with pytest.raises(MessageError, match="16000"):
        asyncio.run(node.process(Message.new("s", "pcm", np.zeros(441, np.float32), sr=44100, t_capture_ns=0,
                                             t_wall=0.0)))
    with pytest.raises(ConfigError, match="hop"):
        parse_config(MusicTagsNode.Config, {"hop": 0.005}, "tags")
    with pytest.raises(ConfigError, match="unknown config key"):
        parse_config(MusicTagsNode.Config, {"genre": "rock"}, "tags")
    with pytest.raises(ModelError, match="music classes"):
        TagIndex.of([g for g in GENRES if g != "Jazz"])
