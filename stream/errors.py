"""One exception hierarchy for the whole project: every error says what is wrong and how to fix it."""


class StreamError(Exception):
    """Base of every error `stream` raises on purpose."""


class ConfigError(StreamError):
    """A graph or node configuration is invalid (unknown key, wrong type, out of range)."""


class MessageError(StreamError):
    """A message on the wire is malformed, truncated, of an unknown version or out of order."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class AudioError(StreamError):
    """Audio that cannot be used: unreadable, empty, NaN, wrong sample rate, too short."""


class ModelError(StreamError):
    """A model file is missing, corrupt or does not match the expected architecture."""
