"""Small audio helpers shared by the stages: WAV I/O, resampling, levels.

Arrays are float32 in [-1, 1], shaped ``(n_samples,)`` for mono or ``(n_samples, n_channels)``.
WAV files are written as 32-bit float (lossless for the pipeline's intermediate stems) unless a
subtype is given.
"""

from __future__ import annotations

import os
from math import gcd
from pathlib import Path

import numpy as np


def read_audio(path: str | os.PathLike, mono: bool = False) -> tuple[np.ndarray, int]:
    """Read a WAV/FLAC file with soundfile.

    Returns:
        ``(samples, sample_rate_hz)``; samples float32, ``(n,)`` when ``mono`` else ``(n, ch)``.
    """
    import soundfile as sf

    data, sr = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    if mono:
        data = data.mean(axis=1)
    return data, int(sr)


def write_audio(path: str | os.PathLike, samples: np.ndarray, sample_rate_hz: int, subtype: str = "FLOAT") -> Path:
    """Write ``samples`` to ``path`` atomically (temp file + rename), so a killed run leaves no torn file."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    sf.write(os.fspath(tmp), np.asarray(samples, dtype=np.float32), sample_rate_hz, subtype=subtype, format="WAV")
    os.replace(tmp, path)
    return path


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Polyphase resampling (scipy.signal.resample_poly) along axis 0; float32 out."""
    if from_hz == to_hz:
        return np.asarray(samples, dtype=np.float32)
    from scipy.signal import resample_poly

    g = gcd(int(from_hz), int(to_hz))
    return resample_poly(samples, to_hz // g, from_hz // g, axis=0).astype(np.float32)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average channels: ``(n, ch) -> (n,)``; mono input returned as is."""
    return samples.mean(axis=1) if samples.ndim == 2 else samples


