"""Sound events: YAMNet in JAX (front end `frontend.py`, network `yamnet.py`, converter `convert.py`).

    yamnet = load_yamnet(); scores, embeddings = yamnet(log_mel(waveform)[None, :96])
"""
