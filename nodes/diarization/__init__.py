"""Speaker diarisation: online clustering, aggregation, turns, refinement and the pipeline chaining them."""
