"""Timing fit (isochrony) of one synthesized line to its slot: trim, borrow free time, time-stretch.

A dubbed line should start when the original line starts and end before the next one does. The fit
(:func:`fit_speech`) does, in order:

1. trim the TTS output's leading and trailing silence (:func:`trim_silence`);
2. if the speech fits in the slot, place it at the slot start untouched (a much shorter line is
   kept at the start, never slowed down);
3. else borrow free time (where nobody speaks) after the slot, then up to ``max_borrow_before_s``
   before it;
4. if still too long, time-stretch it faster (rubberband, pitch kept, :func:`time_stretch`) by the
   needed ratio, at most ``max_stretch``;
5. what still does not fit is reported as ``overrun_s``: speech is never cut (the lines after an
   overrunning line are delayed: :mod:`lipdub.timing.placement`).

The 1.25 default stretch limit is the project's quality threshold (DESIGN.md, timing report: the
share of speech that fits without a stretch above 1.25).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio import read_audio, resample, write_audio
from ..contracts.synthesize import PhonemeTiming, Speech
from ..errors import BackendUnavailable, ConfigError, StageFailed
from ..script import FitReport
from ..tools import run_child

log = logging.getLogger(__name__)

#: Stretch ratios within this distance of 1 are treated as 1 (the audio is returned unchanged).
RATIO_TOLERANCE = 1e-3
#: Window of the RMS envelope used by :func:`trim_silence`, seconds.
TRIM_WINDOW_S = 0.010
#: Overruns shorter than this are rounding (whole samples after stretching and resampling) and reported as 0.
OVERRUN_TOLERANCE_S = 0.001


def _mono_float32(samples: np.ndarray, what: str = "samples") -> np.ndarray:
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ConfigError(f"{what} must be mono, shape (n,), got shape {x.shape}", "mix down to mono first")
    return x


def _check_rate(sample_rate_hz: int) -> None:
    if not isinstance(sample_rate_hz, (int, np.integer)) or sample_rate_hz <= 0:
        raise ConfigError(f"sample_rate_hz must be a positive integer, got {sample_rate_hz!r}", "use e.g. 48000")


def trim_silence(
    samples: np.ndarray,
    sample_rate_hz: int,
    threshold_db: float = -40.0,
    pad_s: float = 0.02,
) -> tuple[np.ndarray, float]:
    """Remove leading and trailing silence (the pauses TTS engines put around a line).

    A sample position counts as sound when the RMS over a centered 10 ms window is above
    ``threshold_db`` relative to the loudest such window (the same rule as
    ``librosa.effects.trim(top_db=40, ref=np.max)``, at sample resolution). The kept span runs from
    the first to the last sounding position, widened by ``pad_s`` on each side (within the signal).

    Args:
        samples: float mono audio, shape ``(n,)``.
        sample_rate_hz: its sample rate.
        threshold_db: gate level in dB relative to the peak window, < 0.
        pad_s: silence kept before the first and after the last sound, seconds, >= 0.

    Returns:
        ``(trimmed, lead_trim_s)``: float32 ``(m,)`` and the seconds removed at the start. All-silent
        (all-zero) or empty input gives an empty array and 0.0.

    Raises:
        ConfigError: ``threshold_db >= 0``, ``pad_s < 0``, a bad rate or non-mono input.
    """
    x = _mono_float32(samples)
    _check_rate(sample_rate_hz)
    if not threshold_db < 0:
        raise ConfigError(f"threshold_db must be negative (dB below the peak), got {threshold_db}", "use e.g. -40")
    if pad_s < 0:
        raise ConfigError(f"pad_s must be >= 0, got {pad_s}", "use e.g. 0.02")
    n = x.size
    if n == 0:
        return x, 0.0
    half = max(1, int(round(TRIM_WINDOW_S * sample_rate_hz / 2)))
    csum = np.concatenate([[0.0], np.cumsum(np.square(x, dtype=np.float64))])
    idx = np.arange(n)
    lo = np.maximum(idx - half, 0)
    hi = np.minimum(idx + half + 1, n)
    power = (csum[hi] - csum[lo]) / (hi - lo)
    peak = float(power.max())
    if peak <= 0.0:
        return x[:0], 0.0
    loud = np.flatnonzero(power > peak * 10.0 ** (threshold_db / 10.0))
    pad = int(round(pad_s * sample_rate_hz))
    start = max(0, int(loud[0]) - pad)
    end = min(n, int(loud[-1]) + 1 + pad)
    return x[start:end].copy(), start / sample_rate_hz


def time_stretch(samples: np.ndarray, sample_rate_hz: int, ratio: float) -> np.ndarray:
    """Change the tempo of speech with pitch kept: output duration = input duration / ``ratio``.

    Uses the Rubber Band Library's command-line tool (``rubberband``, Debian ``rubberband-cli``,
    version 3.x) with its R3 "finer" engine (``--fine``), which the Rubber Band documentation
    recommends for quality, through temporary 32-bit float WAV files; ``--time 1/ratio``.

    Args:
        samples: float mono audio, shape ``(n,)``.
        sample_rate_hz: its sample rate.
        ratio: speed factor, > 0; > 1 is faster (shorter). Within 1e-3 of 1 the input is returned
            unchanged (as float32).

    Returns:
        float32 ``(m,)`` with ``m`` about ``n / ratio``.

    Raises:
        ConfigError: ratio not a positive finite number, a bad rate or non-mono input.
        BackendUnavailable: the ``rubberband`` program is not installed.
        StageFailed: rubberband failed.
    """
    x = _mono_float32(samples)
    _check_rate(sample_rate_hz)
    if not (isinstance(ratio, (int, float)) and math.isfinite(ratio) and ratio > 0):
        raise ConfigError(f"stretch ratio must be a positive number, got {ratio!r}", "use e.g. 1.2 for 20 % faster")
    if abs(ratio - 1.0) <= RATIO_TOLERANCE or x.size == 0:
        return x
    exe = shutil.which("rubberband")
    if exe is None:
        raise BackendUnavailable("the rubberband program is not installed", "apt-get install rubberband-cli")
    with tempfile.TemporaryDirectory(prefix="lipdub-stretch-") as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        write_audio(src, x, sample_rate_hz)
        cmd = [exe, "--quiet", "--fine", "--time", f"{1.0 / ratio:.9f}", os.fspath(src), os.fspath(dst)]
        proc = run_child(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0 or not dst.is_file():
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise StageFailed(f"rubberband failed (exit {proc.returncode}): {detail[0]}", "check the rubberband install")
        out, _ = read_audio(dst, mono=True)
    return out.astype(np.float32, copy=False)


@dataclass(frozen=True)
class Slot:
    """Where a line should go on the output timeline, seconds from the start of the source.

    Attributes:
        start_s, end_s: the original segment's span.
        free_before_s: silence (nobody speaking) just before ``start_s`` that may be borrowed.
        free_after_s: silence just after ``end_s`` that may be borrowed.

    Raises:
        ConfigError: ``end_s < start_s`` or a negative free time.
    """

    start_s: float
    end_s: float
    free_before_s: float = 0.0
    free_after_s: float = 0.0

    def __post_init__(self) -> None:
        values = (self.start_s, self.end_s, self.free_before_s, self.free_after_s)
        if not all(math.isfinite(v) for v in values):
            raise ConfigError(f"slot times must be finite numbers, got {values}", "check the segment times")
        if self.end_s < self.start_s:
            raise ConfigError(f"slot ends ({self.end_s:.3f} s) before it starts ({self.start_s:.3f} s)", "check the segment times")
        if self.free_before_s < 0 or self.free_after_s < 0:
            raise ConfigError(
                f"free time around a slot must be >= 0, got before {self.free_before_s}, after {self.free_after_s}",
                "compute free time as the gap to the neighbouring speech, at least 0",
            )

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass
class FittedSpeech:
    """A line fitted to its slot.

    Attributes:
        samples: float32 mono, shape ``(n,)``, at ``sample_rate_hz``; to be played from ``placed_start_s``.
        sample_rate_hz: output rate.
        placed_start_s, placed_end_s: where the audio goes on the output timeline, seconds
            (``placed_end_s - placed_start_s`` is the audio's duration).
        stretch_ratio: speed-up applied (trimmed duration / stretched duration requested from
            rubberband); 1.0 when not stretched.
        borrowed_before_s, borrowed_after_s: free time used before / after the slot.
        overrun_s: how far the audio runs past the slot end plus the borrowed time after it, >= 0
            (below 1 ms, whole-sample rounding, it is reported as 0).
        synthesized_duration_s: duration of the TTS output, seconds.
        trimmed_duration_s: duration after trimming silence, before stretching.
        phonemes: the TTS phoneme timings mapped into the fitted audio, seconds from its first sample
            (add ``placed_start_s`` for timeline time); ``None`` when the TTS gave none.
        voice: the TTS voice, copied from the speech.
    """

    samples: np.ndarray
    sample_rate_hz: int
    placed_start_s: float
    placed_end_s: float
    stretch_ratio: float
    borrowed_before_s: float
    borrowed_after_s: float
    overrun_s: float
    synthesized_duration_s: float
    trimmed_duration_s: float
    phonemes: list[PhonemeTiming] | None = None
    voice: str | None = field(default=None)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate_hz

    def report(self, tts_backend: str, slot: Slot, attempts: int = 1, audio_path: str | None = None) -> FitReport:
        """The :class:`lipdub.script.FitReport` for ``script.json``."""
        return FitReport(
            tts_backend=tts_backend,
            voice=self.voice,
            synthesized_duration_s=self.synthesized_duration_s,
            trimmed_duration_s=self.trimmed_duration_s,
            slot_start_s=slot.start_s,
            slot_end_s=slot.end_s,
            placed_start_s=self.placed_start_s,
            placed_end_s=self.placed_end_s,
            stretch_ratio=self.stretch_ratio,
            borrowed_before_s=self.borrowed_before_s,
            borrowed_after_s=self.borrowed_after_s,
            overrun_s=self.overrun_s,
            attempts=attempts,
            audio_path=audio_path,
        )


def _map_phonemes(
    phonemes: list[PhonemeTiming] | None, lead_trim_s: float, ratio: float, duration_s: float
) -> list[PhonemeTiming] | None:
    if phonemes is None:
        return None
    out = []
    for p in phonemes:
        start = min(max((p.start_s - lead_trim_s) / ratio, 0.0), duration_s)
        end = min(max((p.end_s - lead_trim_s) / ratio, 0.0), duration_s)
        if end > start:
            out.append(PhonemeTiming(start_s=start, end_s=end, phoneme=p.phoneme))
    return out


def _borrow(duration_s: float, slot: Slot, max_borrow_before_s: float) -> tuple[float, float, float]:
    """Free time a line of ``duration_s`` borrows around ``slot``: after it first, then before it
    (capped); returns ``(before_s, after_s, still_missing_s)``."""
    need_s = duration_s - slot.duration_s
    before = after = 0.0
    if need_s > 0:
        after = min(need_s, slot.free_after_s)
        need_s -= after
        before = min(need_s, slot.free_before_s, max_borrow_before_s)
        need_s -= before
    return before, after, need_s


def fit_speech(
    speech: Speech,
    slot: Slot,
    max_stretch: float = 1.25,
    sample_rate_hz: int = 48000,
    max_borrow_before_s: float = 0.25,
) -> FittedSpeech:
    """Fit one synthesized line into its slot (see the module docstring for the order of steps).

    Args:
        speech: the TTS output (any rate, float mono).
        slot: the segment's span and the free time around it.
        max_stretch: largest speed-up allowed, >= 1 (1 disables stretching).
        sample_rate_hz: rate of the returned samples (resampled with :func:`lipdub.audio.resample`).
        max_borrow_before_s: cap on the free time borrowed before the slot, >= 0 (starting early
            looks wrong on screen sooner than ending late).

    Returns:
        :class:`FittedSpeech`. Its duration is the trimmed duration / ``stretch_ratio``; nothing is cut.

    Raises:
        ConfigError: ``max_stretch < 1``, ``max_borrow_before_s < 0``, a bad rate or non-mono speech.
        StageFailed: the speech is empty or silent.
        BackendUnavailable: rubberband is needed and not installed.
    """
    if not (isinstance(max_stretch, (int, float)) and math.isfinite(max_stretch) and max_stretch >= 1.0):
        raise ConfigError(f"max_stretch must be >= 1, got {max_stretch!r}", "use 1 (no stretch) or more, e.g. 1.25")
    if not (math.isfinite(max_borrow_before_s) and max_borrow_before_s >= 0):
        raise ConfigError(f"max_borrow_before_s must be >= 0, got {max_borrow_before_s!r}", "use e.g. 0.25")
    _check_rate(sample_rate_hz)
    _check_rate(speech.sample_rate_hz)
    raw = _mono_float32(speech.samples, "speech samples")
    synthesized_s = raw.size / speech.sample_rate_hz
    trimmed, lead_trim_s = trim_silence(raw, speech.sample_rate_hz)
    if trimmed.size == 0:
        raise StageFailed("the synthesized speech is silent", "check the line's text and the TTS voice")
    trimmed_s = trimmed.size / speech.sample_rate_hz

    borrowed_before, borrowed_after, need_s = _borrow(trimmed_s, slot, max_borrow_before_s)
    window_s = slot.duration_s + borrowed_after + borrowed_before

    ratio = 1.0
    audio = trimmed
    if need_s > 0 and max_stretch > 1.0:
        wanted = trimmed_s / window_s if window_s > 0 else math.inf
        ratio = min(wanted, float(max_stretch))
        if abs(ratio - 1.0) <= RATIO_TOLERANCE:
            ratio = 1.0
        else:
            audio = time_stretch(trimmed, speech.sample_rate_hz, ratio)
    audio = resample(audio, speech.sample_rate_hz, sample_rate_hz)
    out_s = audio.size / sample_rate_hz

    placed_start = slot.start_s - borrowed_before
    placed_end = placed_start + out_s
    overrun = placed_end - (slot.end_s + borrowed_after)
    overrun = overrun if overrun > OVERRUN_TOLERANCE_S else 0.0
    phonemes = _map_phonemes(speech.phonemes, lead_trim_s, ratio, out_s)
    log.debug(
        "fit %.2f s into %.2f s slot: borrowed %.2f+%.2f s, ratio %.3f, overrun %.2f s",
        trimmed_s, slot.duration_s, borrowed_before, borrowed_after, ratio, overrun,
    )
    return FittedSpeech(
        samples=audio,
        sample_rate_hz=sample_rate_hz,
        placed_start_s=placed_start,
        placed_end_s=placed_end,
        stretch_ratio=ratio,
        borrowed_before_s=borrowed_before,
        borrowed_after_s=borrowed_after,
        overrun_s=overrun,
        synthesized_duration_s=synthesized_s,
        trimmed_duration_s=trimmed_s,
        phonemes=phonemes,
        voice=speech.voice,
    )
