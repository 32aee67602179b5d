"""Kaldi-compatible speech front ends (log-mel fbank, MFCC), offline and streaming.

`kaldi.fbank(wave, cfg)` / `kaldi.mfcc(wave, cfg)` compute a whole signal; `streaming.StreamingFeatures` takes
audio chunk by chunk and emits exactly the same frames (the concatenation of its outputs equals the offline
result bit for bit, because frames never depend on samples outside their own 25 ms).
"""
