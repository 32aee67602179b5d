"""i-vector speaker embeddings (Dehak et al. 2011), trained here in JAX: the classic GMM-UBM / total-variability
front end that x-vectors replaced, kept as a baseline for the speaker lab (issue 23).

    features.py   MFCC + deltas, energy VAD, CMVN                       audio -> [T, 60]
    ubm.py        diagonal-covariance GMM (the UBM) by EM with splitting [T, 60] -> posteriors
    stats.py      Baum-Welch statistics per utterance                   posteriors -> (N [C], F [C, 60])
    tvm.py        total-variability matrix T by EM, i-vector extraction (N, F) -> w [R]
    model.py      the trained extractor (UBM, T, LDA) and its checkpoint; `embed` audio -> unit [lda_dim]
    train.py      the resumable training run behind `stream train-ivector`
"""
