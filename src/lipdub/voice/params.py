"""Voice parameters of a stretch of speech: F0 median and range, formant positions (Praat via
praat-parselmouth), and syllable counts of text for speaking rates.

F0 follows Praat's autocorrelation pitch tracker (Boersma 1993, ``Sound: To Pitch``) in a two-pass
set-up (De Looze & Hirst 2008, "Detecting changes in key and range for the automatic modelling and
coding of intonation"): a first pass over 60-600 Hz gives the quartiles q1, q3, the second pass runs
over [0.75 q1, 1.5 q3] so octave errors drop out. Formants are Praat's Burg LPC tracker
(``Sound: To Formant (burg)``) with a 5500 Hz ceiling for voices with a median F0 >= 165 Hz and
5000 Hz below (Praat manual's advice for female / male voices); the medians over voiced frames are
kept.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..registry import require_module

#: F0 median separating the "female" (higher) and "male" (lower) registers, Hz. Adult speaking F0
#: averages are about 120 Hz (men) and 210 Hz (women) (Titze 1994, Principles of Voice Production);
#: 165 Hz is halfway.
REGISTER_SPLIT_HZ = 165.0
PITCH_FLOOR_HZ = 60.0
PITCH_CEILING_HZ = 600.0


@dataclass(frozen=True)
class VoiceParams:
    """Measured voice parameters.

    Attributes:
        f0_median_hz: median F0 over voiced frames, Hz.
        f0_p10_hz, f0_p90_hz: 10th and 90th percentiles of F0 (its range), Hz.
        formants_hz: medians of F1, F2, F3 over voiced frames, Hz (NaN where Praat found none).
        voiced_s: seconds of voiced frames the figures come from.
        f0_min_hz: lowest F0 found, Hz.
    """

    f0_median_hz: float
    f0_p10_hz: float
    f0_p90_hz: float
    formants_hz: tuple[float, float, float]
    voiced_s: float
    f0_min_hz: float = 0.0

    @property
    def f0_range_st(self) -> float:
        """F0 range p10..p90 in semitones."""
        return 12.0 * math.log2(self.f0_p90_hz / self.f0_p10_hz) if self.f0_p10_hz > 0 else 0.0

    @property
    def register(self) -> str:
        """``"female"`` when the median F0 is at least :data:`REGISTER_SPLIT_HZ`, else ``"male"``."""
        return "female" if self.f0_median_hz >= REGISTER_SPLIT_HZ else "male"


def _parselmouth():
    return require_module("parselmouth", "praat-parselmouth")


def measure_voice(samples: np.ndarray, sample_rate_hz: int, time_step_s: float = 0.01, min_voiced_s: float = 0.2) -> VoiceParams:
    """Measure F0 and formants of mono speech (see the module docstring for the method).

    Args:
        samples: float mono audio, shape ``(n,)``.
        sample_rate_hz: its rate.
        time_step_s: analysis hop in seconds.
        min_voiced_s: least voiced time needed, seconds.

    Returns:
        :class:`VoiceParams`.

    Raises:
        ConfigError: not mono, or less than ``min_voiced_s`` of voiced frames (no voice to measure).
        BackendUnavailable: praat-parselmouth is not installed.
    """
    pm = _parselmouth()
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ConfigError(f"measure_voice needs mono audio, shape (n,), got {x.shape}", "mix down to mono first")
    snd = pm.Sound(x, sampling_frequency=float(sample_rate_hz))
    f0 = _f0_values(snd, time_step_s, PITCH_FLOOR_HZ, PITCH_CEILING_HZ)
    if f0.size >= 20:
        q1, q3 = np.percentile(f0, [25, 75])
        f0 = _f0_values(snd, time_step_s, max(40.0, 0.75 * q1), min(1000.0, 1.5 * q3))
    if f0.size * time_step_s < min_voiced_s or f0.size < 2:
        raise ConfigError(
            f"only {f0.size * time_step_s:.2f} s of voiced speech found: no voice to measure",
            "give a longer stretch of speech (several seconds)",
        )
    med = float(np.median(f0))
    p10, p90 = (float(v) for v in np.percentile(f0, [10, 90]))
    ceiling = 5500.0 if med >= REGISTER_SPLIT_HZ else 5000.0
    formant = snd.to_formant_burg(time_step=time_step_s, max_number_of_formants=5, maximum_formant=ceiling)
    pitch = snd.to_pitch(time_step=time_step_s, pitch_floor=PITCH_FLOOR_HZ, pitch_ceiling=PITCH_CEILING_HZ)
    times = pitch.xs()[pitch.selected_array["frequency"] > 0]
    fs = []
    for k in (1, 2, 3):
        vals = np.array([formant.get_value_at_time(k, t) for t in times], dtype=np.float64)
        vals = vals[np.isfinite(vals)]
        fs.append(float(np.median(vals)) if vals.size else float("nan"))
    return VoiceParams(med, p10, p90, (fs[0], fs[1], fs[2]), f0.size * time_step_s, float(f0.min()))


def _f0_values(snd, time_step_s: float, floor_hz: float, ceiling_hz: float) -> np.ndarray:
    pitch = snd.to_pitch(time_step=time_step_s, pitch_floor=floor_hz, pitch_ceiling=ceiling_hz)
    f = pitch.selected_array["frequency"]
    return f[f > 0].astype(np.float64)


_VOWELS = "aeiouyàáâãäåæèéêëìíîïòóôõöøùúûüýÿœ"
_VOWEL_RUN = re.compile(f"[{_VOWELS}]+")
_LETTERS = re.compile(r"[^\W\d_]+")
_STRONG = set("aeoáéóàèòâêôãõ")
_ACCENTED_WEAK = set("íúìù")


def count_syllables(text: str, language: str | None = None) -> int:
    """Approximate syllable count of a line: one per vowel-letter group in Latin-script words.

    The orthographic vowel-group rule (used e.g. by readability formulas since Flesch 1948) is close
    for most Latin-script languages; a word ending in a lone ``e`` after a consonant (English
    ``make``) is counted one less. For Spanish, Portuguese, Italian and Catalan (``language`` ``es``,
    ``pt``, ``it``, ``ca``) a vowel group is split at a hiatus: two strong vowels (a, e, o) in a row,
    or a written-accented weak vowel (í, ú) next to another vowel (RAE, Ortografía 2010, 4.1.1.2).
    Non-Latin letters (CJK, kana, Thai...) count one syllable per character, which holds for Chinese
    and kana.

    Returns:
        >= 0; 0 for text with no letters.
    """
    hiatus = (language or "").lower().split("-")[0] in ("es", "pt", "it", "ca")
    total = 0
    for word in _LETTERS.findall(text.lower()):
        latin = all("LATIN" in unicodedata.name(ch, "") for ch in word)
        if not latin:
            total += len(word)
            continue
        runs = _VOWEL_RUN.findall(word)
        n = len(runs)
        if hiatus:
            for run in runs:
                n += sum(1 for a, b in zip(run, run[1:])
                         if (a in _STRONG and b in _STRONG) or a in _ACCENTED_WEAK or b in _ACCENTED_WEAK)
        elif n > 1 and len(word) > 2 and word.endswith("e") and word[-2] not in _VOWELS and word[-2] != "l":
            n -= 1
        total += max(1, n)
    return total

#: Centre frequencies of the spectral-envelope bands: third octaves (IEC 61260 base-2 spacing) from
#: 100 Hz to 12.7 kHz, Hz.
ENVELOPE_BANDS_HZ = tuple(float(100.0 * 2.0 ** (k / 3.0)) for k in range(22))


#: Mean syllable rate of read speech per language, syllables/s, pauses removed (Pellegrino, Coupé &
#: Marsico, "A cross-language perspective on speech information rate", Language 87(3):539-558, 2011:
#: 59 native speakers reading the same texts). Languages without a published figure are not listed.
NATURAL_SYLLABLES_PER_S = {"es": 7.82, "fr": 7.18, "it": 6.99, "en": 6.19, "de": 5.97}


def natural_speed(voice_syllables_per_s: float | None, language: str, max_speed: float) -> float:
    """The TTS ``rate`` at which a voice that speaks ``voice_syllables_per_s`` at rate 1.0 reaches the
    natural rate of ``language`` (:data:`NATURAL_SYLLABLES_PER_S`), between 1.0 and ``max_speed``.

    A voice already at or above the natural rate keeps 1.0 (it is never slowed down); a language
    without a figure, or a voice not measured (None), gives 1.0: the backend's own rate is taken as
    natural. The isochrony fit judges every line's speed-up against this rate
    (:func:`lipdub.timing.isochrony.fit_line`).
    """
    ref = NATURAL_SYLLABLES_PER_S.get(language.lower().split("-")[0])
    if ref is None or not voice_syllables_per_s or voice_syllables_per_s <= 0:
        return 1.0
    return round(min(max(1.0, ref / voice_syllables_per_s), max(1.0, max_speed)), 4)


def spectral_envelope_db(samples: np.ndarray, sample_rate_hz: int) -> list[float | None]:
    """Long-term average spectrum (LTAS) of speech in third-octave bands, dB relative to the mean band.

    Welch's averaged periodogram (``scipy.signal.welch``, 1024-sample Hann segments at 16 kHz
    equivalent) summed per band of :data:`ENVELOPE_BANDS_HZ`; bands above 0.9 x Nyquist are None.
    The LTAS carries the speaker's timbre (formant regions, spectral tilt) and the recording
    channel, which is what speaker encoders hear.

    Returns:
        One value per band (dB, mean 0 over the defined bands) or None.
    """
    from scipy.signal import welch

    x = np.asarray(samples, dtype=np.float64)
    nper = int(2 ** round(np.log2(1024 * sample_rate_hz / 16000)))
    f, p = welch(x, fs=sample_rate_hz, nperseg=min(nper, max(16, x.size)))
    out: list[float | None] = []
    for c in ENVELOPE_BANDS_HZ:
        lo, hi = c / 2 ** (1 / 6), c * 2 ** (1 / 6)
        if hi > 0.9 * sample_rate_hz / 2:
            out.append(None)
            continue
        m = (f >= lo) & (f < hi)
        out.append(float(10.0 * np.log10(p[m].sum() + 1e-20)))
    vals = [v for v in out if v is not None]
    mean = float(np.mean(vals)) if vals else 0.0
    return [None if v is None else round(v - mean, 2) for v in out]
