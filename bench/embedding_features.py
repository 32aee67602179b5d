"""NumPy vs JAX for the Kaldi fbank on small streaming chunks (why nodes/features is NumPy).

Run: .venv/bin/python bench/embedding_features.py  -> per-chunk microseconds for each chunk size.
The JAX variant is the same float32 math jitted once per chunk shape (warm-up excluded).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from nodes.features.kaldi import FbankConfig, fbank, frames, mel_banks, povey_window


def jax_fbank(cfg: FbankConfig):
    window = jnp.asarray(povey_window(cfg), jnp.float32)
    banks = jnp.asarray(mel_banks(cfg), jnp.float32)

    @jax.jit
    def run(framed: jax.Array) -> jax.Array:
        x = framed - framed.mean(axis=1, keepdims=True)
        x = jnp.concatenate([x[:, :1] * (1 - cfg.preemph_coeff), x[:, 1:] - cfg.preemph_coeff * x[:, :-1]], axis=1)
        spec = jnp.fft.rfft(x * window, n=cfg.fft_size, axis=1)
        return jnp.log(jnp.maximum((spec.real**2 + spec.imag**2) @ banks, 1.1920929e-07))

    return run


def per_call_us(fn, arg, repeats: int = 300) -> float:
    fn(arg)
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn(arg)
    if hasattr(out, "block_until_ready"):
        out.block_until_ready()
    return (time.perf_counter() - start) / repeats * 1e6


def main() -> None:
    cfg = FbankConfig()
    rng = np.random.default_rng(0)
    run = jax_fbank(cfg)
    print("chunk_ms  numpy_us  jax_us")
    for chunk_ms in (10, 100, 500, 2000):
        wave = (rng.standard_normal(cfg.frame_length + 16 * chunk_ms) * 3000).astype(np.float32)
        framed = jnp.asarray(frames(wave, cfg))
        print(f"{chunk_ms:8d}  {per_call_us(lambda w: fbank(w, cfg), wave):8.0f}  {per_call_us(run, framed):6.0f}")


if __name__ == "__main__":
    main()
