"""Silero VAD v6 weights -> our parameter tree (see `model.py`), read with NumPy only (no safetensors/onnx).

Two upstream files of the silero-vad 6.2.3 package hold this architecture, with DIFFERENT weights:
- `silero_vad_16k.safetensors` (converter `silero`): 8-byte little-endian header length, JSON header
  {name: {dtype, shape, data_offsets}}, raw little-endian bytes.
- `silero_vad.onnx` (converter `silero_onnx`): the released model that `silero_vad.load_silero_vad(onnx=True)` and
  onnxruntime run. Its weights are Constant nodes inside the 16 kHz branch of an `If` on the sample rate; we read
  them with a minimal protobuf walker.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from stream.errors import ModelError

_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}

# ours -> file, one leaf each
NAMES: dict[str, str] = {
    "stft/basis": "stft_conv.weight",
    **{f"conv{i}/{k}": f"conv{i}.{k}" for i in range(1, 5) for k in ("weight", "bias")},
    "lstm/w_ih": "lstm_cell.weight_ih",
    "lstm/w_hh": "lstm_cell.weight_hh",
    "head/weight": "final_conv.weight",
    "head/bias": "final_conv.bias",
}
FOLDED = ("lstm_cell.bias_ih", "lstm_cell.bias_hh")  # summed into lstm/b

SHAPES = {
    "stft/basis": (258, 1, 256),
    "conv1/weight": (128, 129, 3),
    "conv2/weight": (64, 128, 3),
    "conv3/weight": (64, 64, 3),
    "conv4/weight": (128, 64, 3),
    "lstm/w_ih": (512, 128),
    "lstm/w_hh": (512, 128),
    "head/weight": (1, 128, 1),
}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """All tensors of a .safetensors file as NumPy arrays."""
    raw = Path(path).read_bytes()
    try:
        (size,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8 : 8 + size])
    except (struct.error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path} is not a safetensors file ({exc}); restore it from its source") from exc
    data = memoryview(raw)[8 + size :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _DTYPES:
            raise ModelError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        if end > len(data):
            raise ModelError(f"{path} is truncated (tensor {name} ends past the file); restore it from its source")
        dtype = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")
        tensors[name] = np.frombuffer(data[start:end], dtype=dtype).reshape(info["shape"]).copy()
    return tensors


# upstream ONNX constant name -> safetensors name (the same tensors, named by the PyTorch module tree)
ONNX_NAMES: dict[str, str] = {
    "stft.forward_basis_buffer": "stft_conv.weight",
    **{f"encoder.{i}.reparam_conv.{k}": f"conv{i + 1}.{k}" for i in range(4) for k in ("weight", "bias")},
    **{f"decoder.rnn.{k}": f"lstm_cell.{k}" for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")},
    "decoder.decoder.2.weight": "final_conv.weight",
    "decoder.decoder.2.bias": "final_conv.bias",
}
_ONNX_FLOAT = 1  # TensorProto.DataType FLOAT: all weights; other constants (shapes, indices) are skipped


def _protobuf_fields(buf: memoryview) -> list[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value) of one protobuf message: ints for varint/fixed, bytes for length-delimited."""
    out, pos = [], 0

    def varint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            byte = buf[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while pos < len(buf):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            out.append((field, wire, varint()))
        elif wire == 2:
            size = varint()
            out.append((field, wire, buf[pos : pos + size]))
            pos += size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            out.append((field, wire, int.from_bytes(buf[pos : pos + size], "little")))
            pos += size
        else:
            raise ModelError(f"unsupported protobuf wire type {wire}: not an ONNX file")
    return out


def _onnx_float_tensor(buf: memoryview) -> np.ndarray | None:
    """Float TensorProto -> array (dims: field 1, data_type: 2, float_data: 4, raw_data: 9); None if not float."""
    dims, dtype, raw, floats = [], 1, None, b""
    for field, wire, value in _protobuf_fields(buf):
        if field == 1:
            dims += [value] if wire == 0 else [v for _, _, v in _protobuf_fields(_packed_varints(value))]
        elif field == 2:
            dtype = value
        elif field == 9:
            raw = bytes(value)
        elif field == 4:
            floats += bytes(value) if wire == 2 else int(value).to_bytes(4, "little")
    if dtype != _ONNX_FLOAT:
        return None
    data = raw if raw is not None else floats
    return np.frombuffer(data, np.dtype("<f4")).reshape(dims).copy()


def _packed_varints(buf: memoryview) -> memoryview:
    """Re-tag packed varints as a message of field-1 varints so `_protobuf_fields` can read them."""
    out, pos = bytearray(), 0
    while pos < len(buf):
        out.append(0x08)
        while buf[pos] >= 0x80:
            out.append(buf[pos])
            pos += 1
        out.append(buf[pos])
        pos += 1
    return memoryview(bytes(out))


def _onnx_constants(graph: memoryview, found: list[dict[str, np.ndarray]]) -> None:
    """Append the Constant tensors of `graph` and of each nested subgraph (one dict per graph) to `found`.

    Keys are the output names after the exporter's last "__" (the PyTorch parameter name).
    """
    constants: dict[str, np.ndarray] = {}
    for field, _, node in _protobuf_fields(graph):
        if field != 1:  # GraphProto.node
            continue
        fields = _protobuf_fields(node)
        op = next((bytes(v).decode() for f, _, v in fields if f == 4), "")
        outputs = [bytes(v).decode() for f, _, v in fields if f == 2]
        for attribute in (v for f, _, v in fields if f == 5):
            for a_field, _, a_value in _protobuf_fields(attribute):
                if a_field == 5 and op == "Constant":  # AttributeProto.t
                    tensor = _onnx_float_tensor(a_value)
                    if tensor is not None:
                        constants[outputs[0].split("__")[-1]] = tensor
                elif a_field == 6:  # AttributeProto.g: an If branch
                    _onnx_constants(a_value, found)
    found.append(constants)


def read_silero_onnx(path: Path) -> dict[str, np.ndarray]:
    """The 16 kHz weights of a Silero VAD v5/v6 ONNX export, under safetensors names."""
    try:
        model = _protobuf_fields(memoryview(Path(path).read_bytes()))
        graph = next(v for f, _, v in model if f == 7)  # ModelProto.graph
        found: list[dict[str, np.ndarray]] = []
        _onnx_constants(graph, found)
    except (StopIteration, IndexError, ValueError) as exc:
        raise ModelError(f"{path} is not a readable ONNX file ({exc}); restore it from its source") from exc
    basis = "stft.forward_basis_buffer"
    branch = next((c for c in found if basis in c and c[basis].shape == SHAPES["stft/basis"]), None)
    if branch is None:
        raise ModelError(f"{path} has no 16 kHz Silero VAD branch (STFT basis of shape {SHAPES['stft/basis']})")
    missing = ONNX_NAMES.keys() - branch.keys()
    if missing:
        raise ModelError(f"{path}: 16 kHz branch lacks {sorted(missing)}; not a Silero VAD v5/v6 export")
    return {ours: branch[theirs].astype(np.float32) for theirs, ours in ONNX_NAMES.items()}


def convert_tensors(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """File tensors -> flat "/"-joined parameters; fails on any missing, unexpected or misshapen tensor."""
    expected = set(NAMES.values()) | set(FOLDED)
    missing, unused = expected - tensors.keys(), tensors.keys() - expected
    if missing or unused:
        raise ModelError(
            f"not a Silero VAD v6 16 kHz weight file: missing {sorted(missing)}; unexpected {sorted(unused)}"
        )
    flat = {ours: tensors[theirs].astype(np.float32) for ours, theirs in NAMES.items()}
    flat["lstm/b"] = (tensors[FOLDED[0]] + tensors[FOLDED[1]]).astype(np.float32)
    for name, shape in SHAPES.items():
        if flat[name].shape != shape:
            raise ModelError(f"Silero VAD tensor {NAMES[name]} has shape {flat[name].shape}, expected {shape}")
    return flat


def silero(path: Path) -> dict[str, np.ndarray]:
    """Converter for `silero_vad_16k.safetensors` (another checkpoint than the released ONNX; not registered)."""
    return convert_tensors(read_safetensors(path))


def silero_onnx(path: Path) -> dict[str, np.ndarray]:
    """Converter for the released `silero_vad.onnx` (registered for "silero-vad"): the weights onnxruntime runs."""
    return convert_tensors(read_silero_onnx(path))
