"""Speaker embedding models in JAX (CAM++, ECAPA-TDNN), their converters and the batched/incremental APIs.

- `campplus`: the CAM++ network as a pure function of a parameter tree (`forward`).
- `api`: `embed(params, fbank[B, T, 80], weights[B, T] | None) -> [B, 192]` and `embed_waveforms`, the entry
  points other nodes use (diarisation, enrolment, `stream embed`).
- `ecapa`: SpeechBrain's ECAPA-TDNN, generic over its constructor arguments.
- `convert`: upstream checkpoints -> our parameter trees, with explicit name tables.
- `xvector`, `dvector`, `train`: the baselines and their AAM-softmax training (`stream train-embedding`).
- `incremental`: sliding-window embeddings per stream that reuse work between steps, generic over the encoder:
  `incremental_xvector` (exact, for an x-vector trained with a causal input) and `incremental_campplus`
  (approximate).
"""
