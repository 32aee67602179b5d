"""`stream models list|info|convert` on the CAM++ entry, with a private cache folder."""

from __future__ import annotations

import numpy as np

from stream.cli import main
from stream.models import load_params


def test_models_info_convert_list(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STREAM_CACHE_DIR", str(tmp_path))
    assert main(["models", "info", "campplus"]) == 0
    info = capsys.readouterr().out
    assert "license:      Apache-2.0" in info and "present:      yes" in info and "converted:    no" in info

    assert main(["models", "convert", "campplus"]) == 0
    cached = tmp_path / "models"
    assert len(list(cached.glob("campplus-*.npz"))) == 1
    capsys.readouterr()
    assert main(["models", "info", "campplus"]) == 0
    info = capsys.readouterr().out
    assert "converted:    yes" in info and "sha256:" in info

    params = load_params("campplus")
    assert params["dense"]["w"].shape == (192, 1024)
    assert sum(np.asarray(v).size for v in _leaves(params)) == 6_848_928  # weights + folded BN scale/shift

    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("campplus ") and " yes " in line for line in lines)


def _leaves(tree):
    for value in tree.values():
        yield from _leaves(value) if isinstance(value, dict) else [value]
