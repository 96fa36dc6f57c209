"""The log-mel front end of lipdub's own audio analysis: a block-wise numpy STFT and mel filterbank.

Used by the ``retrieval`` lip-sync's audio features (:mod:`lipdub.backends.lipsync.features`) and by
the acoustic alignment of a transcript (:mod:`lipdub.lipsync.align`). The quality report's landmark
sync score (:mod:`lipdub.qc.sync`) deliberately has its own front end (librosa): a measure of the
lip-sync should not share code with the method it measures.

Everything here is numpy/scipy (no librosa at run time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import get_window

from .errors import InputError


def mel_filterbank(sample_rate_hz: int, n_fft: int, n_mels: int, fmin_hz: float = 0.0, fmax_hz: float | None = None) -> np.ndarray:
    """Triangular mel filters (HTK mel scale, 2595 log10(1 + f/700)), area-normalized (Slaney style).

    Returns float64 ``(n_mels, n_fft // 2 + 1)``.
    """
    fmax_hz = sample_rate_hz / 2 if fmax_hz is None else fmax_hz
    mel = lambda f: 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)  # noqa: E731
    hz = lambda m: 700.0 * (10 ** (np.asarray(m) / 2595.0) - 1.0)  # noqa: E731
    edges = hz(np.linspace(mel(fmin_hz), mel(fmax_hz), n_mels + 2))
    freqs = np.linspace(0, sample_rate_hz / 2, n_fft // 2 + 1)
    lo, ce, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    fb = np.maximum(0.0, np.minimum((freqs - lo) / np.maximum(ce - lo, 1e-9), (hi - freqs) / np.maximum(hi - ce, 1e-9)))
    return fb * (2.0 / np.maximum(hi - lo, 1e-9))


@dataclass
class LogMel:
    """Log-mel spectrogram of one utterance.

    Attributes:
        db: float32 ``(M, n_mels)`` 10 log10(mel power + floor), floor = 1e-8 x the utterance's
            peak band power (so a gain change adds a constant); frame m is centred on ``m * hop_s``.
        power: float64 ``(M,)`` mean-square level of each analysis window (full scale = 1).
        hop_s: hop in seconds.
    """

    db: np.ndarray
    power: np.ndarray
    hop_s: float

    @property
    def energy_db(self) -> np.ndarray:
        """float32 ``(M,)`` level of each window in dBFS (floor -120)."""
        return (10.0 * np.log10(self.power + 1e-12)).astype(np.float32)


LOG_MEL_BLOCK_FRAMES = 4096  # STFT frames computed at once (the whole-length STFT of a long video is GBs)


def log_mel(audio: np.ndarray, sample_rate_hz: int, n_mels: int = 80, win_s: float = 0.025, hop_s: float = 0.010) -> LogMel:
    """Log-mel power spectrogram (numpy STFT, Hann window, centred frames, 0-``sample_rate_hz``/2).

    Args:
        audio: float mono ``(n,)``, any rate (16000 in the pipeline).
        sample_rate_hz: its rate.

    Raises:
        InputError: the audio is not 1-D.
    """
    x = np.asarray(audio)  # float32 stays float32 here; each block is made float64 (exactly) below
    x = x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)
    if x.ndim != 1:
        raise InputError(f"audio must be mono (1-D), got shape {x.shape}", "pass the 16 kHz mono analysis audio")
    win = int(round(win_s * sample_rate_hz))
    hop = int(round(hop_s * sample_rate_hz))
    n_fft = 1 << int(np.ceil(np.log2(win)))
    xp = np.pad(x, (n_fft // 2, n_fft // 2))
    n_frames = 1 + max(0, (len(xp) - n_fft)) // hop
    if len(xp) < n_fft:
        xp = np.pad(xp, (0, n_fft - len(xp)))
    w = np.zeros(n_fft)
    off = (n_fft - win) // 2
    w[off:off + win] = get_window("hann", win, fftbins=True)
    fb = mel_filterbank(sample_rate_hz, n_fft, n_mels, 0.0, None).T
    mel = np.empty((n_frames, n_mels))
    power_ms = np.empty(n_frames)
    w_ms = max(float(np.mean(w ** 2)), 1e-12)
    for f0 in range(0, n_frames, LOG_MEL_BLOCK_FRAMES):  # the STFT frames a block at a time: bounded memory
        f1 = min(n_frames, f0 + LOG_MEL_BLOCK_FRAMES)
        frames = xp[np.arange(n_fft)[None, :] + hop * np.arange(f0, f1)[:, None]].astype(np.float64) * w
        mel[f0:f1] = (np.abs(np.fft.rfft(frames, axis=1)) ** 2) @ fb
        power_ms[f0:f1] = np.mean(frames ** 2, axis=1) / w_ms  # window-weighted mean square
    floor = 1e-8 * max(float(mel.max()), 1e-30)
    db = 10.0 * np.log10(mel + floor)
    return LogMel(db=db.astype(np.float32), power=power_ms, hop_s=hop / sample_rate_hz)
