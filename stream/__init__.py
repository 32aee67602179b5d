"""stream: real-time audio analysis as a graph of async nodes over ZeroMQ."""

__version__ = "0.1.0"
