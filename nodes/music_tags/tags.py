"""Genre and mood tags from YAMNet's AudioSet music classes: a pure function over a run of patch scores.

YAMNet's 521 classes include AudioSet's "Music genre" branch (Pop music ... Independent music, 50 classes) and its
"Music mood" branch (6 classes). Over a span of audio the tags are the classes with the highest *mean* score (a
genre should hold for the span, not flash in one patch), and `music` is the mean score of the class "Music": a
span whose music score is below the caller's threshold gets no genre or mood (speech, noise, silence).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stream.errors import ModelError

MUSIC = "Music"
GENRES = (
    "Pop music", "Hip hop music", "Rock music", "Heavy metal", "Punk rock", "Grunge", "Progressive rock",
    "Rock and roll", "Psychedelic rock", "Rhythm and blues", "Soul music", "Reggae", "Country", "Swing music",
    "Bluegrass", "Funk", "Folk music", "Middle Eastern music", "Jazz", "Disco", "Classical music", "Opera",
    "Electronic music", "House music", "Techno", "Dubstep", "Drum and bass", "Electronica", "Electronic dance music",
    "Ambient music", "Trance music", "Music of Latin America", "Salsa music", "Flamenco", "Blues",
    "Music for children", "New-age music", "Vocal music", "A capella", "Music of Africa", "Afrobeat",
    "Christian music", "Gospel music", "Music of Asia", "Carnatic music", "Music of Bollywood", "Ska",
    "Traditional music", "Independent music",
)
MOODS = ("Happy music", "Sad music", "Tender music", "Exciting music", "Angry music", "Scary music")


@dataclass(frozen=True)
class MusicTags:
    music: float  # mean score of "Music" over the span, [0, 1]
    genres: list[tuple[str, float]]  # the top genres (display name, mean score), best first; [] when no music
    moods: list[tuple[str, float]]  # the top moods, best first; [] when no music


@dataclass(frozen=True)
class TagIndex:
    """Where the music classes sit in a model's class list (checked once, at load)."""

    music: int
    genres: np.ndarray
    moods: np.ndarray

    @staticmethod
    def of(class_names: Sequence[str]) -> TagIndex:
        where = {name: i for i, name in enumerate(class_names)}
        missing = [n for n in (MUSIC, *GENRES, *MOODS) if n not in where]
        if missing:
            raise ModelError(f"the class map lacks AudioSet music classes {missing[:5]}: use YAMNet's "
                             "yamnet_class_map.csv")
        return TagIndex(where[MUSIC], np.array([where[n] for n in GENRES]), np.array([where[n] for n in MOODS]))


def music_tags(scores: np.ndarray, index: TagIndex, top_k: int, min_music: float) -> MusicTags:
    """Tags of a span from its patch scores [patches, classes]: the top_k genres and moods by mean score, if the
    span's mean "Music" score reaches `min_music`."""
    mean = scores.mean(axis=0)
    music = float(mean[index.music])
    if music < min_music:
        return MusicTags(music, [], [])

    def top(names: tuple[str, ...], columns: np.ndarray) -> list[tuple[str, float]]:
        order = np.argsort(-mean[columns])[:top_k]
        return [(names[i], float(mean[columns[i]])) for i in order]

    return MusicTags(music, top(GENRES, index.genres), top(MOODS, index.moods))
