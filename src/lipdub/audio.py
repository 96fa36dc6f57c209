"""Small audio helpers shared by the stages: WAV I/O, resampling, levels.

Arrays are float32 in [-1, 1], shaped ``(n_samples,)`` for mono or ``(n_samples, n_channels)``.
WAV files are written as 32-bit float (lossless for the pipeline's intermediate stems) unless a
subtype is given.
"""

from __future__ import annotations

import os
from math import gcd
from pathlib import Path
from typing import Self

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


#: Samples (per channel) an :class:`AudioFile` read or a streamed resampling handles at once.
BLOCK_SAMPLES = 1 << 20


class AudioFile:
    """A WAV/FLAC file read a block at a time (soundfile): ``read(a, b)`` gives float32
    ``(b - a, channels)``, the samples ``read_audio`` would give at ``[a, b)``, without reading the
    rest. Attributes ``n_samples``, ``channels``, ``sample_rate_hz``. A context manager; :meth:`close`
    releases the file.

    Raises:
        soundfile.LibsndfileError: the file cannot be opened.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        import soundfile as sf

        self._file = sf.SoundFile(os.fspath(path))
        self.n_samples, self.channels, self.sample_rate_hz = self._file.frames, self._file.channels, int(self._file.samplerate)

    def read(self, a: int, b: int) -> np.ndarray:
        self._file.seek(a)
        return self._file.read(b - a, dtype="float32", always_2d=True)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ArraySource:
    """An array read as :class:`AudioFile` reads a file (a block source of the mix chain and the
    meters): ``read(a, b)`` gives float32 ``(b - a, channels)`` (a view when ``x`` is float32 and
    2-D). ``x``: float ``(n,)`` or ``(n, channels)``; attributes ``n_samples``, ``channels``."""

    def __init__(self, x: np.ndarray) -> None:
        x = np.asarray(x)
        self._x = x if x.ndim == 2 else x[:, None]
        self.n_samples, self.channels = self._x.shape

    def read(self, a: int, b: int) -> np.ndarray:
        return np.asarray(self._x[a:b], dtype=np.float32)


def resample_blocks(read, n_samples: int, from_hz: int, to_hz: int, block_samples: int = BLOCK_SAMPLES) -> np.ndarray:
    """:func:`resample` of a signal given by ``read(a, b)`` (float32 ``(b - a,)`` samples ``[a, b)`` of
    ``n_samples``), a block at a time: the same float32 samples as one ``resample_poly`` over the whole
    signal, while only a block (and its float64 filter output) is held beside the result.

    Each block starts at a multiple of the decimation factor and is filtered with a margin of input
    samples on both sides that covers ``resample_poly``'s filter (half length ``10 * max(up, down)``),
    so every output sample is made from the same inputs and taps as in the whole-signal call.

    Returns:
        float32 ``(ceil(n_samples * to_hz / from_hz),)``.
    """
    g = gcd(int(from_hz), int(to_hz))
    up, down = int(to_hz) // g, int(from_hz) // g
    if up == down == 1:
        return np.asarray(read(0, n_samples), dtype=np.float32)
    from scipy.signal import resample_poly

    n_out = -(-n_samples * up // down)
    out = np.empty(n_out, dtype=np.float32)
    step = max(down, block_samples // down * down)
    margin = -(-(10 * max(up, down) + 2) // down) * down  # > the filter's reach, a multiple of down
    for a in range(0, n_samples, step):
        b = min(n_samples, a + step)
        lo, hi = max(0, a - margin), min(n_samples, b + margin)
        y = resample_poly(read(lo, hi), up, down)
        o0, o1 = a * up // down, min(n_out, -(-b * up // down))
        out[o0:o1] = y[o0 - lo * up // down:o1 - lo * up // down]
    return out


def read_resampled(path: str | os.PathLike, to_hz: int, block_samples: int = BLOCK_SAMPLES) -> np.ndarray:
    """``resample(read_audio(path, mono=True)[0], rate, to_hz)``, the same float32 samples, read and
    resampled a block at a time (:func:`resample_blocks`): neither the whole file nor its whole-length
    mono or float64 copies are held, only the result (a 10-minute 48 kHz stereo stem is 230 MB as
    float32; its 16 kHz mono is 38 MB).

    Returns:
        float32 mono ``(m,)`` at ``to_hz``.
    """
    with AudioFile(path) as f:
        return resample_blocks(lambda a, b: f.read(a, b).mean(axis=1), f.n_samples, f.sample_rate_hz, to_hz, block_samples)


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


