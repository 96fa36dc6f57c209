"""Wav2Lip's audio front end: the normalised log-mel spectrogram its generator was trained on.

Reproduces ``audio.melspectrogram`` of Rudrabha/Wav2Lip with its ``hparams`` (the reference):

1. pre-emphasis ``y[n] = x[n] - 0.97 x[n-1]`` (``scipy.signal.lfilter([1, -0.97], [1], x)``);
2. STFT: 16 kHz, ``n_fft`` 800, hop 200 (12.5 ms, 80 frames per second), window 800 (periodic Hann),
   centred with reflect padding of ``n_fft // 2`` (librosa 0.7's default, which the reference used);
   magnitude (not power);
3. 80 mel bands from 55 to 7600 Hz (``librosa.filters.mel``: Slaney mel scale, Slaney area
   normalisation);
4. ``20 log10(max(1e-5, mel)) - 20`` dB (min level -100 dB, ref level 20 dB);
5. symmetric normalisation to [-4, 4]: ``clip(8 (S + 100) / 100 - 4, -4, 4)``.

Video frame ``i`` (at ``fps``) reads the 16 mel frames starting at ``int(i * 80 / fps)`` (the last 16
when that runs past the end), as the reference inference script does.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ...errors import InputError

SAMPLE_RATE_HZ = 16000
N_FFT = 800
HOP_LENGTH = 200
WIN_LENGTH = 800
N_MELS = 80
FMIN_HZ = 55.0
FMAX_HZ = 7600.0
PREEMPHASIS = 0.97
REF_LEVEL_DB = 20.0
MIN_LEVEL_DB = -100.0
MAX_ABS_VALUE = 4.0
MEL_FRAMES_PER_S = SAMPLE_RATE_HZ / HOP_LENGTH  # 80
MEL_STEP_FRAMES = 16  # mel frames per video frame window (0.2 s)

_MEL_BASIS: np.ndarray | None = None


def mel_basis() -> np.ndarray:
    """float32 ``(80, 401)`` mel filterbank (``librosa.filters.mel``, Slaney scale and norm)."""
    global _MEL_BASIS
    if _MEL_BASIS is None:
        import librosa

        _MEL_BASIS = librosa.filters.mel(sr=SAMPLE_RATE_HZ, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN_HZ, fmax=FMAX_HZ)
    return _MEL_BASIS


def melspectrogram(wav: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Wav2Lip's normalised log-mel spectrogram of mono speech.

    Args:
        wav: float ``(n,)`` mono samples in [-1, 1].
        sample_rate_hz: must be 16000 (resample first; the reference loads audio at 16 kHz).

    Returns:
        float32 ``(80, 1 + n // 200)`` values in [-4, 4] (-4: -100 dB or below).

    Raises:
        InputError: not mono, empty, non-finite, or another sample rate.
    """
    import librosa
    from scipy.signal import lfilter

    if sample_rate_hz != SAMPLE_RATE_HZ:
        raise InputError(f"Wav2Lip's mel front end needs {SAMPLE_RATE_HZ} Hz audio, got {sample_rate_hz} Hz",
                         "resample to 16 kHz first (lipdub.audio.resample)")
    x = np.asarray(wav, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0:
        raise InputError(f"Wav2Lip's mel front end needs non-empty mono audio, got shape {x.shape}", "mix down to mono")
    if not np.isfinite(x).all():
        raise InputError("audio contains NaN or infinite samples", "check the audio file")
    y = lfilter([1.0, -PREEMPHASIS], [1.0], x)
    spec = np.abs(librosa.stft(y=y, n_fft=N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH, window="hann",
                               center=True, pad_mode="reflect"))
    mel = mel_basis() @ spec
    min_level = np.exp(MIN_LEVEL_DB / 20.0 * np.log(10.0))
    db = 20.0 * np.log10(np.maximum(min_level, mel)) - REF_LEVEL_DB
    norm = 2.0 * MAX_ABS_VALUE * ((db - MIN_LEVEL_DB) / -MIN_LEVEL_DB) - MAX_ABS_VALUE
    return np.clip(norm, -MAX_ABS_VALUE, MAX_ABS_VALUE).astype(np.float32)


def mel_window_starts(frame_times_s: np.ndarray | None = None, *, frame_count: int | None = None,
                      fps: Fraction | float | None = None) -> np.ndarray:
    """First mel frame of each video frame's 16-frame window.

    Either ``frame_count`` and ``fps`` (constant rate; ``int(i * 80 / fps)`` exactly as the reference,
    in exact rational arithmetic when ``fps`` is a :class:`~fractions.Fraction`), or
    ``frame_times_s`` (presentation times, VFR-safe: ``floor(t * 80)``, with a 1e-6 mel-frame
    tolerance so ``i / fps`` rounding never moves a window).

    Returns:
        int64 ``(frames,)`` start indices (not clipped; see :func:`mel_windows`).
    """
    if frame_times_s is not None:
        t = np.asarray(frame_times_s, dtype=np.float64)
        return np.floor(t * MEL_FRAMES_PER_S + 1e-6).astype(np.int64)
    if frame_count is None or fps is None:
        raise InputError("mel_window_starts needs frame_times_s, or frame_count and fps", "pass the video's frame times")
    f = Fraction(fps).limit_denominator(1_000_000) if not isinstance(fps, Fraction) else fps
    return np.array([int(Fraction(i * 80) / f) for i in range(frame_count)], dtype=np.int64)


def mel_windows(mel: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The generator's audio input for each start: float32 ``(N, 1, 80, 16)``.

    A window running past the end of ``mel`` is the last 16 frames (as the reference); ``mel``
    shorter than 16 frames is padded with -4 (silence) on the right.
    """
    if mel.shape[1] < MEL_STEP_FRAMES:
        mel = np.pad(mel, ((0, 0), (0, MEL_STEP_FRAMES - mel.shape[1])), constant_values=-MAX_ABS_VALUE)
    last = mel.shape[1] - MEL_STEP_FRAMES
    s = np.minimum(np.maximum(np.asarray(starts, np.int64), 0), last)
    idx = s[:, None] + np.arange(MEL_STEP_FRAMES)[None, :]
    return np.ascontiguousarray(mel[:, idx].transpose(1, 0, 2)[:, None]).astype(np.float32)
