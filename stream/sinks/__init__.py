"""Where events leave the graph: `Sink` interface (base.py), one module per sink kind, the sinks node."""
