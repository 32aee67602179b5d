"""Voice activity detection: Silero VAD v6 (16 kHz) in JAX, streaming with state, plus hysteresis decisions.

    params = stream.models.load_params("silero-vad")
    vad = VoiceActivityDetector(params, VadConfig(onset=0.5, offset=0.35)); probs, events = vad.push(samples)
    probs, regions = detect_speech(params, audio)             # whole file
"""

from nodes.vad.detector import (
    CHUNK_SECONDS,
    HysteresisState,
    SileroStream,
    SpeechEvent,
    VadConfig,
    VoiceActivityDetector,
    detect_speech,
    hysteresis,
    segments,
    speech_probabilities,
)

__all__ = [
    "CHUNK_SECONDS",
    "HysteresisState",
    "SileroStream",
    "SpeechEvent",
    "VadConfig",
    "VoiceActivityDetector",
    "detect_speech",
    "hysteresis",
    "segments",
    "speech_probabilities",
]
