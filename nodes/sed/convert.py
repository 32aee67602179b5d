"""`yamnet.tflite` -> our YAMNet parameter tree (see `yamnet.py`), read with NumPy only (no LiteRT on any path).

The file is a TFLite flatbuffer (schema: tensorflow/lite/schema/schema.fbs); `read_tflite` walks just the tables
we need: tensors (name, shape, type, buffer, quantisation) and operators (code, inputs, options). The converter
then follows the graph's 27 conv/FC operators in order and maps every constant tensor by name: network weights to
our leaves, front-end constants (window, DFT, mel matrices, the log offset) to checks against `frontend.py`, graph
plumbing (shapes, gather indices) to nothing. A constant it cannot place, or a weight of the wrong shape, fails.

The converted weights keep the file's int8 values and scales (the "tflite" arithmetic multiplies by them inside
the network, the "float" one folds them).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nodes.sed import frontend
from stream.errors import ModelError

# Builtin operator codes (schema.fbs BuiltinOperator) and tensor types (TensorType) we meet in YAMNet.
_OPS = {3: "CONV_2D", 4: "DEPTHWISE_CONV_2D", 9: "FULLY_CONNECTED", 6: "DEQUANTIZE"}
_TYPES = {0: np.float32, 2: np.int32, 9: np.int8}
_ACTIVATIONS = {0: None, 1: "relu"}

# (layer, stride, output channels), YAMNet's _YAMNET_LAYER_DEFS; layer 1 is a full 3x3 conv, 2-14 separable.
LAYERS = [(1, 2, 32), (2, 1, 64), (3, 2, 128), (4, 1, 128), (5, 2, 256), (6, 1, 256), (7, 2, 512), (8, 1, 512),
          (9, 1, 512), (10, 1, 512), (11, 1, 512), (12, 1, 512), (13, 2, 1024), (14, 1, 1024)]
_SCOPE = "yamnet_frames/"


def _weight_names() -> dict[str, str]:
    """ours -> the TFLite tensor name that starts the file's name for it (names of fused tensors grow suffixes)."""
    names = {"layer1/conv/kernel": "layer1/conv/Conv2D", "layer1/conv/bias": "layer1/conv/bn/FusedBatchNormV3"}
    for layer in range(2, 15):
        names[f"layer{layer}/depthwise/kernel"] = f"layer{layer}/depthwise_conv/bn/FusedBatchNormV3;"
        names[f"layer{layer}/depthwise/bias"] = f"layer{layer}/depthwise_conv/bn/FusedBatchNormV3"
        names[f"layer{layer}/pointwise/kernel"] = f"layer{layer}/pointwise_conv/Conv2D"
        names[f"layer{layer}/pointwise/bias"] = f"layer{layer}/pointwise_conv/bn/FusedBatchNormV3"
    names["logits/kernel"] = "dense/MatMul"
    names["logits/bias"] = "dense/BiasAdd/ReadVariableOp/resource"
    return {ours: _SCOPE + theirs for ours, theirs in names.items()}


NAMES = _weight_names()
# Front-end constants, checked against our own (frontend.py) instead of loaded.
FRONTEND = {
    "tf_op_layer_Mul/Mul/y": "window",
    "tf_op_layer_MatMul/MatMul": "dft real",
    "tf_op_layer_MatMul_1/MatMul_1": "dft imaginary",
    "tf_op_layer_MatMul_2/MatMul_2": "mel",
    "tf_op_layer_MatMul_2/MatMul_21": "log offset",
}
# Graph plumbing (framing, padding, reshapes, patch gather, pooling axes): constants with no weight in them.
PLUMBING = ("reshape/Reshape/shape", "global_average_pooling2d/Mean/reduction_indices", "tf_op_layer_GatherV2",
            "tf_op_layer_Pad/Pad/paddings", "tf_op_layer_Reshape", "tf_op_layer_Slice/Slice/begin",
            "tf_op_layer_Squeeze/Squeeze", "tf_op_layer_StridedSlice/StridedSlice")


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    data: np.ndarray | None  # None for activations (no buffer)
    scales: np.ndarray | None  # int8 tensors: per-channel (or one) dequantisation scale


@dataclass
class Operator:
    op: str
    inputs: list[int]
    outputs: list[int]
    options: _Table | None  # builtin options (Conv2DOptions, ...): read fields with `.scalar(index, format)`


class _Table:
    """One flatbuffer table: fields by index, read lazily from the file bytes."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos
        vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        size = struct.unpack_from("<H", buf, vtable)[0]
        self.fields = [struct.unpack_from("<H", buf, vtable + 4 + 2 * i)[0] for i in range((size - 4) // 2)]

    def _at(self, field: int) -> int | None:
        offset = self.fields[field] if field < len(self.fields) else 0
        return self.pos + offset if offset else None

    def scalar(self, field: int, fmt: str, default: int | float = 0) -> int | float:
        at = self._at(field)
        return default if at is None else struct.unpack_from("<" + fmt, self.buf, at)[0]

    def _ref(self, field: int) -> int | None:
        at = self._at(field)
        return None if at is None else at + struct.unpack_from("<I", self.buf, at)[0]

    def table(self, field: int) -> _Table | None:
        ref = self._ref(field)
        return None if ref is None else _Table(self.buf, ref)

    def string(self, field: int) -> str:
        ref = self._ref(field)
        if ref is None:
            return ""
        (n,) = struct.unpack_from("<I", self.buf, ref)
        return self.buf[ref + 4 : ref + 4 + n].decode()

    def vector(self, field: int, dtype: str) -> np.ndarray:
        ref = self._ref(field)
        if ref is None:
            return np.zeros(0, dtype)
        (n,) = struct.unpack_from("<I", self.buf, ref)
        return np.frombuffer(self.buf, dtype, n, ref + 4)

    def tables(self, field: int) -> list[_Table]:
        ref = self._ref(field)
        if ref is None:
            return []
        (n,) = struct.unpack_from("<I", self.buf, ref)
        slots = [ref + 4 + 4 * i for i in range(n)]
        return [_Table(self.buf, s + struct.unpack_from("<I", self.buf, s)[0]) for s in slots]


def read_tflite(path: Path) -> tuple[list[Tensor], list[Operator]]:
    """Tensors and operators of the first subgraph of a .tflite file."""
    buf = Path(path).read_bytes()
    if buf[4:8] != b"TFL3":
        raise ModelError(f"{path} is not a TFLite flatbuffer (no TFL3 identifier); restore it from its source")
    try:
        model = _Table(buf, struct.unpack_from("<I", buf, 0)[0])
        codes = [max(int(c.scalar(0, "b")), int(c.scalar(3, "i"))) for c in model.tables(1)]
        buffers = [b.vector(0, "u1") for b in model.tables(4)]
        graph = model.tables(2)[0]
        tensors = []
        for t in graph.tables(0):
            dtype = _TYPES.get(int(t.scalar(1, "b")))
            raw = buffers[int(t.scalar(2, "I"))]
            quant = t.table(4)
            scales = quant.vector(2, "<f4").copy() if quant is not None and len(quant.vector(2, "<f4")) else None
            shape = tuple(int(d) for d in t.vector(0, "<i4"))
            data = None
            if len(raw):
                if dtype is None:
                    raise ModelError(f"{path}: tensor {t.string(3)} has an unsupported type {t.scalar(1, 'b')}")
                data = np.frombuffer(raw.tobytes(), dtype).reshape(shape).copy()
            tensors.append(Tensor(t.string(3), shape, data, scales))
        operators = []
        for o in graph.tables(3):
            operators.append(Operator(_OPS.get(codes[int(o.scalar(0, "I"))], "other"),
                                      [int(i) for i in o.vector(1, "<i4")], [int(i) for i in o.vector(2, "<i4")], o.table(4)))
    except (struct.error, IndexError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{path} is not a readable TFLite file ({exc}); restore it from its source") from exc
    return tensors, operators


def _int8(tensor: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(int8 values as int8, per-output-channel float32 scales) of a quantised weight."""
    if tensor.data is None or tensor.data.dtype != np.int8 or tensor.scales is None:
        raise ModelError(f"tensor {tensor.name} is not an int8 weight with scales")
    channels = tensor.shape[0]
    scales = np.broadcast_to(tensor.scales, (channels,)) if tensor.scales.size in (1, channels) else None
    if scales is None:
        raise ModelError(f"tensor {tensor.name}: {tensor.scales.size} scales for {channels} channels")
    return tensor.data, scales.astype(np.float32)


def _float(tensor: Tensor) -> np.ndarray:
    """A weight as float32: float tensors as they are, int8 ones dequantised (per output channel, axis 0)."""
    if tensor.data is not None and tensor.data.dtype == np.int8:
        q, scales = _int8(tensor)
        return q.astype(np.float32) * scales.reshape((-1,) + (1,) * (q.ndim - 1))
    if tensor.data is None or tensor.data.dtype != np.float32:
        raise ModelError(f"tensor {tensor.name} is not a float32 constant")
    return tensor.data


def _check_frontend(tensors: dict[str, Tensor]) -> None:
    """The file's front-end constants must equal ours, or `frontend.log_mel` would not be what the model saw."""
    c = frontend._constants()
    window = _float(tensors[_SCOPE + "tf_op_layer_Mul/Mul/y"]).ravel()
    pairs = {
        "window": (window, c.window32),
        "dft real": (tensors[_SCOPE + "tf_op_layer_MatMul/MatMul"].data.T, c.dft_q[:, :257]),
        "dft imaginary": (tensors[_SCOPE + "tf_op_layer_MatMul_1/MatMul_1"].data.T, c.dft_q[:, 257:]),
        "mel": (tensors[_SCOPE + "tf_op_layer_MatMul_2/MatMul_2"].data.T, c.mel_q),
        "log offset": (tensors[_SCOPE + "tf_op_layer_MatMul_2/MatMul_21"].data, np.full(64, frontend.LOG_OFFSET)),
    }
    for what, (theirs, ours) in pairs.items():
        if theirs.shape != ours.shape or not np.allclose(theirs.astype(np.float64), ours, rtol=0, atol=1e-7):
            raise ModelError(f"the file's front-end {what} differs from nodes/sed/frontend.py: not YAMNet's front end")


def _constants(tensors: list[Tensor]) -> dict[str, Tensor]:
    """Constant tensors by name (fused names kept whole); fails on one no table places."""
    found = {t.name: t for t in tensors if t.data is not None}
    for name in found:
        short = name.removeprefix(_SCOPE)
        placed = (any(name.startswith(theirs) for theirs in NAMES.values()) or short in FRONTEND
                  or short.startswith(PLUMBING))
        if not placed:
            raise ModelError(f"yamnet.tflite has a constant {name!r} that no name table places: not YAMNet")
    return found


def yamnet_tflite(path: Path) -> dict[str, np.ndarray]:
    """Converter for `yamnet.tflite` (registered as "yamnet"): flat "/"-joined parameters."""
    tensors, operators = read_tflite(path)
    constants = _constants(tensors)
    for theirs in FRONTEND:
        if _SCOPE + theirs not in constants:
            raise ModelError(f"{path}: front-end constant {theirs} missing; not the YAMNet TFLite export")
    _check_frontend(constants)
    dequantized = {op.outputs[0]: op.inputs[0] for op in operators if op.op == "DEQUANTIZE"}
    layers = [op for op in operators if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    dense = [op for op in operators if op.op == "FULLY_CONNECTED"][-1]
    expected = ["CONV_2D"] + ["DEPTHWISE_CONV_2D", "CONV_2D"] * 13
    if [op.op for op in layers] != expected:
        raise ModelError(f"{path}: {len(layers)} conv operators in an unexpected order; not YAMNet's MobileNet-v1")

    flat: dict[str, np.ndarray] = {}
    used: set[str] = set()

    def take(ours: str, index: int) -> Tensor:
        tensor = tensors[dequantized.get(index, index)]
        if not tensor.name.startswith(NAMES[ours]):
            raise ModelError(f"{path}: {ours} should come from {NAMES[ours]}, found {tensor.name}")
        used.add(tensor.name)
        return tensor

    ops = iter(layers)
    for layer, stride, channels in LAYERS:
        kinds = ["conv"] if layer == 1 else ["depthwise", "pointwise"]
        for kind in kinds:
            op = next(ops)
            # Conv2DOptions: padding:byte, stride_w:int, stride_h:int, activation:byte; Depthwise: a depth_multiplier
            # int sits before the activation.
            padding, stride_w, stride_h = (int(op.options.scalar(i, f)) for i, f in ((0, "b"), (1, "i"), (2, "i")))
            activation = int(op.options.scalar(4 if kind == "depthwise" else 3, "b"))
            op_stride = 1 if kind == "pointwise" else stride
            if padding != 0 or (stride_w, stride_h) != (op_stride, op_stride) or _ACTIVATIONS.get(activation) != "relu":
                raise ModelError(f"{path}: layer{layer} {kind} has padding {padding}, strides {stride_w, stride_h}, "
                                 f"activation {activation}; expected SAME, {op_stride}, ReLU")
            kernel, bias = take(f"layer{layer}/{kind}/kernel", op.inputs[1]), take(f"layer{layer}/{kind}/bias", op.inputs[2])
            prefix = f"layer{layer}/{kind}"
            if kind == "conv":  # [O, 3, 3, 1] -> HWIO [3, 3, 1, O]
                flat[f"{prefix}/kernel"] = _float(kernel).transpose(1, 2, 3, 0)
            elif kind == "depthwise":  # [1, 3, 3, C] -> HWIO [3, 3, 1, C]
                flat[f"{prefix}/kernel"] = _float(kernel).transpose(1, 2, 0, 3)
            else:  # [O, 1, 1, I] -> [I, O] int8 values and per-O scales
                q, scales = _int8(kernel)
                flat[f"{prefix}/kernel"], flat[f"{prefix}/scale"] = q[:, 0, 0, :].T.copy(), scales
            flat[f"{prefix}/bias"] = _float(bias)
            if flat[f"{prefix}/bias"].shape != (channels if kind != "depthwise" else flat[f"{prefix}/kernel"].shape[-1],):
                raise ModelError(f"{path}: {prefix} bias has shape {flat[f'{prefix}/bias'].shape}")
    q, scales = _int8(take("logits/kernel", dense.inputs[1]))
    flat["logits/kernel"], flat["logits/scale"] = q.T.copy(), scales
    flat["logits/bias"] = _float(take("logits/bias", dense.inputs[2]))
    weights = {t.name for t in tensors if t.data is not None and t.name.startswith(tuple(NAMES.values()))}
    if weights - used:
        raise ModelError(f"{path}: weights no operator of ours reads: {sorted(weights - used)}")
    if flat["logits/kernel"].shape != (1024, 521):
        raise ModelError(f"{path}: classifier has shape {flat['logits/kernel'].shape}, expected (1024, 521)")
    return flat
