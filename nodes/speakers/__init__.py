"""Speaker verification and identification over embeddings: enrolment store, cosine + s-norm scoring,
threshold calibration from trial lists, open-set identification."""
