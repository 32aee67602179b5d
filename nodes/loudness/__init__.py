"""Loudness: RMS and peak level of pcm blocks as "level" events (the demo graph's model-free node)."""
