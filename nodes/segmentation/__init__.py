"""Overlap-aware local speaker segmentation: pyannote segmentation-3.0 (PyanNet) in JAX.

    params = stream.models.load_params("segmentation-3.0")
    activity, log_probs = segment.segment(params, windows)           # [B, frames, 3], [B, frames, 7]
    seg = segment.RollingSegmenter(params, segment.RollingConfig(window=5.0, step=0.5)); seg.push(samples)

- `model`: PyanNet (SincNet + LSTM) as a pure function; `powerset`: its 7 classes <-> 3 speakers.
- `segment`: batched and rolling segmentation; `node`: the graph node.
- `finetune`, `chunks`, `train_config`: `stream train-segmentation` (train_config imports no JAX, so the command
  line shows its defaults quickly).
"""
