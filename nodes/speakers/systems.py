"""The speaker models the lab compares, each as a `lab.System` (waveforms -> embeddings), built from its weights.

    campplus(name)      CAM++ (shipped weights, `stream models`)
    ivector(ckpt)       i-vector extractor from `stream train-ivector`
    trained(ckpt)       x-vector or d-vector from `stream train-embedding`
    ecapa(ckpt)         ECAPA-TDNN from a user's SpeechBrain `embedding_model.ckpt` (1024-channel VoxCeleb recipe)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nodes.speakers.lab import SAMPLE_RATE, System


def _fbank(waves: list[np.ndarray]) -> list[np.ndarray]:
    from nodes.embedding.api import waveform_fbank

    return [waveform_fbank(w, SAMPLE_RATE) for w in waves]


def campplus(name: str = "campplus") -> System:
    from nodes.embedding.api import campplus_config, embed_feature_list, load_campplus

    params, cfg = load_campplus(name), campplus_config(name)
    return System(name, lambda waves: embed_feature_list(params, _fbank(waves), cfg=cfg))


def ivector(ckpt: Path) -> System:
    from nodes.speakers.ivector.features import ivector_features
    from nodes.speakers.ivector.model import IvectorModel

    model = IvectorModel.load(ckpt)
    return System("i-vector", lambda waves: model.project(model.ivectors([ivector_features(w) for w in waves])))


def trained(ckpt: Path) -> System:
    from nodes.embedding.train import embed_utterances, load_checkpoint

    state = load_checkpoint(ckpt)
    name = {"xvector": "x-vector", "dvector": "d-vector"}[state.kind]
    return System(name, lambda waves: embed_utterances(state.kind, state.model_config, state.params["model"],
                                                       _fbank(waves)))


def ecapa(ckpt: Path) -> System:
    import jax

    from nodes.embedding.convert import ecapa_speechbrain
    from nodes.embedding.ecapa import VOXCELEB, forward

    from stream.models import unflatten

    params = jax.device_put(unflatten(ecapa_speechbrain(ckpt)))
    run = jax.jit(lambda p, x: forward(p, x, VOXCELEB))

    def embed(waves: list[np.ndarray]) -> np.ndarray:
        feats = [f - f.mean(axis=0) for f in _fbank(waves)]  # SpeechBrain's sentence mean normalisation
        return np.stack([np.asarray(run(params, f[None])).reshape(-1) for f in feats])

    return System("ECAPA", embed)
