"""Voice matching: move synthesized speech's pitch, formants and spectral envelope toward a speaker.

Two steps, from the TTS line's own measurement (:func:`lipdub.voice.params.measure_voice`) and the
speaker's profile:

1. Praat's ``Sound: Change gender`` (PSOLA pitch manipulation plus formant shift by resampling;
   Praat manual, "Sound: Change gender...") through praat-parselmouth:

   * new pitch median = the profile's F0 median;
   * pitch range factor = profile F0 range (p10..p90, semitones) / TTS F0 range, clipped to [0.5, 2]
     and so that the line's lowest F0 stays above the 60 Hz floor;
   * formant shift ratio = geometric mean of profile F_k / TTS F_k over F1-F3, clipped to
     :data:`FORMANT_RATIO_LIMITS`. The clip is narrow on purpose: formant estimates from band-limited
     or noisy references (telephone speech has no energy above 3.4 kHz, which drags F3 down) are
     biased, and on the two-speaker telephone test clip wider shifts lowered the resemblyzer
     similarity (bench/voice_similarity.py).

2. Spectral-envelope equalization: a linear-phase FIR filter (``scipy.signal.firwin2``, 1025 taps,
   applied with ``fftconvolve(mode="same")`` so nothing is delayed) whose gain per third-octave band
   is profile LTAS - line LTAS (:func:`lipdub.voice.params.spectral_envelope_db`), clipped to
   +-:data:`MAX_EQ_DB`; the RMS level is kept. This carries the speaker's timbre and channel, the
   part of the voice that formant synthesis lacks most.

Duration is kept (Change gender duration factor 1, zero-delay filter), so the isochrony fit is unaffected.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import ConfigError
from ..registry import require_module
from .params import ENVELOPE_BANDS_HZ, PITCH_CEILING_HZ, PITCH_FLOOR_HZ, VoiceParams, measure_voice, spectral_envelope_db
from .profile import VoiceProfile

FORMANT_RATIO_LIMITS = (0.92, 1.08)
PITCH_RANGE_LIMITS = (0.5, 2.0)
#: Largest boost or cut of the envelope equalizer per band, dB.
MAX_EQ_DB = 20.0
EQ_TAPS = 1025
#: Least voicing (seconds) a line needs to be measured and matched; shorter lines ("Vale.") are
#: left as synthesized and the fit report says so.
MIN_VOICED_S = 0.08


class NotMatchable(Exception):
    """A line cannot be matched (too little voicing for Praat to measure or manipulate)."""


@dataclass(frozen=True)
class MatchSettings:
    """The change applied by :func:`match_voice` (recorded in the fit report).

    Attributes:
        tts_f0_median_hz: median F0 of the synthesized speech before matching, Hz.
        new_f0_median_hz: median F0 asked for (the profile's), Hz.
        pitch_range_factor: multiplier of the F0 excursions around the median.
        formant_shift_ratio: multiplier of the formant frequencies.
        max_eq_gain_db: the largest absolute band gain of the envelope equalizer, dB (0: no EQ).
    """

    tts_f0_median_hz: float
    new_f0_median_hz: float
    pitch_range_factor: float
    formant_shift_ratio: float
    max_eq_gain_db: float = 0.0

    def as_dict(self) -> dict:
        return {k: round(v, 4) for k, v in asdict(self).items()}


def match_settings(tts: VoiceParams, profile: VoiceProfile, contour_min_hz: float | None = None) -> MatchSettings:
    """The Change-gender parameters that move ``tts`` toward ``profile`` (see the module docstring).

    ``contour_min_hz``: the lowest F0 of the contour Praat will manipulate (its own 60-600 Hz
    analysis, octave errors included); default ``tts.f0_min_hz``.
    """
    prof_range = 12.0 * math.log2(profile.f0_p90_hz / profile.f0_p10_hz) if profile.f0_p10_hz > 0 else 0.0
    range_factor = prof_range / tts.f0_range_st if tts.f0_range_st > 0.5 else 1.0
    range_factor = float(np.clip(range_factor, *PITCH_RANGE_LIMITS))
    # Praat widens the excursions around the new median in Hz: keep the lowest point above the
    # pitch floor (a contour pushed to 0 Hz or below makes Change gender fail).
    lowest = tts.f0_min_hz if contour_min_hz is None else contour_min_hz
    low = lowest * profile.f0_median_hz / tts.f0_median_hz if tts.f0_median_hz > 0 else 0.0
    if range_factor > 1.0 and low < profile.f0_median_hz:
        range_factor = max(1.0, min(range_factor, (profile.f0_median_hz - PITCH_FLOOR_HZ) / (profile.f0_median_hz - low)))
    ratios = [p / t for p, t in zip(profile.formants_hz, tts.formants_hz) if p > 0 and t > 0 and math.isfinite(p) and math.isfinite(t)]
    shift = float(np.exp(np.mean(np.log(ratios)))) if ratios else 1.0
    shift = float(np.clip(shift, *FORMANT_RATIO_LIMITS))
    return MatchSettings(tts.f0_median_hz, profile.f0_median_hz, range_factor, shift)


def equalize_envelope(samples: np.ndarray, sample_rate_hz: int, target_db: list[float | None]) -> tuple[np.ndarray, float]:
    """Filter ``samples`` so its third-octave LTAS moves to ``target_db`` (step 2 of the module docstring).

    Bands where either envelope is undefined get the gain of the nearest defined band below; above
    the last band the gain falls to the last band's gain at Nyquist.

    Returns:
        ``(filtered float32 (n,), largest absolute band gain in dB)``.
    """
    from scipy.signal import fftconvolve, firwin2

    x = np.asarray(samples, dtype=np.float64)
    current = spectral_envelope_db(x, sample_rate_hz)
    gains, last = [], 0.0
    for c, t in zip(current, target_db):
        if c is not None and t is not None:
            last = float(np.clip(t - c, -MAX_EQ_DB, MAX_EQ_DB))
        gains.append(last)
    nyq = sample_rate_hz / 2
    freqs, g = [0.0], [gains[0]]
    for f, gain in zip(ENVELOPE_BANDS_HZ, gains):
        if f < nyq:
            freqs.append(f)
            g.append(gain)
    freqs.append(nyq)
    g.append(g[-1])
    fir = firwin2(EQ_TAPS, freqs, 10.0 ** (np.asarray(g) / 20.0), fs=sample_rate_hz)
    y = fftconvolve(x, fir, mode="same")
    rms_in, rms_out = np.sqrt(np.mean(x**2)), np.sqrt(np.mean(y**2))
    if rms_out > 0:
        y *= rms_in / rms_out
    return y.astype(np.float32), float(np.max(np.abs(gains))) if gains else 0.0


def match_voice(samples: np.ndarray, sample_rate_hz: int, profile: VoiceProfile) -> tuple[np.ndarray, MatchSettings]:
    """Shift the pitch contour, formants and spectral envelope of synthesized speech toward ``profile``.

    Args:
        samples: float mono TTS output, shape ``(n,)``.
        sample_rate_hz: its rate.
        profile: the speaker's profile (without ``spectral_envelope_db`` step 2 is skipped).

    Returns:
        ``(matched, settings)``: float32 ``(m,)`` at ``sample_rate_hz`` (``m`` within a few samples of
        ``n``: Praat's overlap-add keeps the duration), peak at most 0.99, and what was applied.

    Raises:
        NotMatchable: the speech has too little voicing to measure or manipulate (a one-word line).
        ConfigError: the speech is not mono.
        BackendUnavailable: praat-parselmouth is not installed.
    """
    pm = require_module("parselmouth", "praat-parselmouth")
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ConfigError(f"voice matching needs mono audio, got shape {x.shape}", "mix down to mono first")
    try:
        snd = pm.Sound(x, sampling_frequency=float(sample_rate_hz))
        contour = snd.to_pitch(pitch_floor=PITCH_FLOOR_HZ, pitch_ceiling=PITCH_CEILING_HZ).selected_array["frequency"]
        contour_min = float(contour[contour > 0].min()) if np.any(contour > 0) else None
        settings = match_settings(measure_voice(x, sample_rate_hz, min_voiced_s=MIN_VOICED_S), profile, contour_min)
        out = pm.praat.call(snd, "Change gender", PITCH_FLOOR_HZ, PITCH_CEILING_HZ, settings.formant_shift_ratio,
                            settings.new_f0_median_hz, settings.pitch_range_factor, 1.0)
    except (ConfigError, pm.PraatError) as exc:
        raise NotMatchable(f"cannot match this line: too little voicing, or Praat failed ({str(exc).splitlines()[0]})") from exc
    y = np.asarray(out.values, dtype=np.float64).reshape(-1)
    if profile.spectral_envelope_db is not None:
        y, max_gain = equalize_envelope(y, sample_rate_hz, profile.spectral_envelope_db)
        settings = MatchSettings(**{**asdict(settings), "max_eq_gain_db": max_gain})
    y = np.asarray(y, dtype=np.float32)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 0.99:
        y *= 0.99 / peak
    return y, settings
