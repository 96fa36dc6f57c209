"""Stage 9, mix: place the fitted lines, lay them over the M&E bed, and set the loudness.

Loudness follows ITU-R BS.1770-4 / EBU R128 as measured by pyloudnorm: the full mix is normalized to
an integrated loudness target and its true peak is held at or below a ceiling by a look-ahead limiter
working on the 4x oversampled signal (the BS.1770-4 Annex 2 true-peak method). The targets people
pick are named for their standards in :data:`LOUDNESS_STANDARDS` (``ebu-r128``, ``atsc-a85``,
``streaming``); :func:`resolve_loudness` turns a standard name and/or explicit figures into the
target and ceiling (default: ATSC A/85, -24 LUFS / -2 dBTP), and :func:`loudness_compliance`
checks measured figures against a standard for the quality report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from . import meter
from .errors import ConfigError

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class LoudnessStandard:
    """A loudness delivery standard.

    Attributes:
        name: the name used by the config / CLI (``--loudness-standard NAME``).
        target_lufs: integrated programme loudness target, LUFS (= LKFS), ITU-R BS.1770-4 gated.
        tolerance_lu: the largest deviation from ``target_lufs`` the standard accepts, LU; an
            explicit ``--loudness`` within it is a valid override, outside it a conflict.
        max_true_peak_dbtp: the highest true peak the standard permits, dBTP; an explicit
            ``--true-peak`` at or below it (stricter) is a valid override, above it a conflict.
        reference: the document the figures come from.
    """

    name: str
    target_lufs: float
    tolerance_lu: float
    max_true_peak_dbtp: float
    reference: str


LOUDNESS_STANDARDS: dict[str, LoudnessStandard] = {
    s.name: s
    for s in (
        LoudnessStandard("ebu-r128", -23.0, 0.5, -1.0,
                         "EBU R 128 (2020): programme loudness -23.0 LUFS, permitted deviation generally +-0.5 LU, "
                         "maximum permitted true peak -1 dBTP (EBU Tech 3343 for production)"),
        LoudnessStandard("atsc-a85", -24.0, 2.0, -2.0,
                         "ATSC A/85:2013 (US broadcast, CALM Act): target -24 LKFS, +-2 dB operating tolerance, "
                         "true peak no higher than -2 dBTP"),
        # -14 LUFS is the playback reference of YouTube and Spotify (Spotify asks for true peaks
        # below -1 dBTP); Apple Music and podcasts use -16. Normalising players turn louder
        # programmes down but YouTube does not turn quieter ones up, so -14 loses nothing on
        # either; -16 (Apple) is accepted as an explicit --loudness within the 2 LU tolerance.
        LoudnessStandard("streaming", -14.0, 2.0, -1.0,
                         "streaming platforms: -14 LUFS (YouTube, Spotify playback normalisation), -1 dBTP "
                         "(Spotify mastering advice); -16 LUFS (Apple Music, AES TD1004 for streaming) within tolerance"),
    )
}
DEFAULT_LOUDNESS_STANDARD = "atsc-a85"  # lipdub's historical default: -24 LUFS / -2 dBTP
# Kept for callers of the short names; the typed table above is the reference.
LOUDNESS_PRESETS_LUFS = {"atsc": -24.0, "ebu": -23.0, "web": -16.0}


@dataclass(frozen=True)
class LoudnessTarget:
    """What the mix aims at: ``target_lufs`` and ``true_peak_dbtp`` (ceiling), and the standard they
    come from (None for explicit figures with no standard named)."""

    target_lufs: float
    true_peak_dbtp: float
    standard: str | None


def loudness_standard(name: str) -> LoudnessStandard:
    """The standard called ``name`` (case-insensitive).

    Raises:
        ConfigError: unknown name (the hint lists the known ones).
    """
    std = LOUDNESS_STANDARDS.get(str(name).strip().lower())
    if std is None:
        raise ConfigError(f"unknown loudness standard {name!r}", f"use one of {', '.join(LOUDNESS_STANDARDS)}")
    return std


def resolve_loudness(standard: str | None = None, target_lufs: float | None = None,
                     true_peak_dbtp: float | None = None) -> LoudnessTarget:
    """The loudness target and ceiling from a standard name and/or explicit figures (None: not given).

    * nothing given: the default standard (``atsc-a85``: -24 LUFS, -2 dBTP);
    * only figures: those figures (a missing one from the default standard), ``standard=None``;
    * a standard: its figures; an explicit ``target_lufs`` within the standard's tolerance or an
      explicit ``true_peak_dbtp`` at or below its maximum overrides them (still compliant).

    Raises:
        ConfigError: unknown standard; a figure out of range (-70..-5 LUFS, -20..0 dBTP); an
            explicit figure that conflicts with the named standard (outside its tolerance, or a
            ceiling above its maximum true peak), never silently ignored.
    """
    if target_lufs is not None and not -70 <= target_lufs <= -5:
        raise ConfigError(f"--loudness {target_lufs:g} LUFS is out of range", "use a loudness target from -70 to -5 LUFS (e.g. -24 or -23)")
    if true_peak_dbtp is not None and not -20 <= true_peak_dbtp <= 0:
        raise ConfigError(f"--true-peak {true_peak_dbtp:g} dBTP is out of range", "use a true-peak ceiling from -20 to 0 dBTP (e.g. -2)")
    if standard is None:
        default = LOUDNESS_STANDARDS[DEFAULT_LOUDNESS_STANDARD]
        if target_lufs is None and true_peak_dbtp is None:
            return LoudnessTarget(default.target_lufs, default.max_true_peak_dbtp, default.name)
        return LoudnessTarget(default.target_lufs if target_lufs is None else float(target_lufs),
                              default.max_true_peak_dbtp if true_peak_dbtp is None else float(true_peak_dbtp), None)
    std = loudness_standard(standard)
    if target_lufs is not None and abs(target_lufs - std.target_lufs) > std.tolerance_lu + 1e-9:
        raise ConfigError(
            f"--loudness {target_lufs:g} LUFS conflicts with --loudness-standard {std.name} "
            f"({std.target_lufs:g} LUFS +-{std.tolerance_lu:g} LU)",
            "drop one of the two, or pick the standard that has that target")
    if true_peak_dbtp is not None and true_peak_dbtp > std.max_true_peak_dbtp + 1e-9:
        raise ConfigError(
            f"--true-peak {true_peak_dbtp:g} dBTP conflicts with --loudness-standard {std.name} "
            f"(true peak at most {std.max_true_peak_dbtp:g} dBTP)",
            f"use a ceiling of {std.max_true_peak_dbtp:g} dBTP or lower, or drop --true-peak")
    return LoudnessTarget(std.target_lufs if target_lufs is None else float(target_lufs),
                          std.max_true_peak_dbtp if true_peak_dbtp is None else float(true_peak_dbtp), std.name)


def loudness_compliance(standard: str, integrated_lufs: float, true_peak_dbtp: float) -> dict:
    """Measured figures against a standard, for the quality report's ``audio.loudness_standard``.

    Returns:
        ``{"standard", "reference", "target_lufs", "tolerance_lu", "max_true_peak_dbtp",
        "integrated_lufs", "true_peak_dbtp", "deviation_lu", "loudness_ok", "true_peak_ok",
        "compliant"}`` (floats rounded to 0.01; ``loudness_ok`` false for silence, -inf LUFS).

    Raises:
        ConfigError: unknown standard.
    """
    std = loudness_standard(standard)
    finite = bool(np.isfinite(integrated_lufs))
    deviation = float(integrated_lufs - std.target_lufs) if finite else float("-inf")
    loud_ok = finite and abs(deviation) <= std.tolerance_lu
    peak_ok = bool(true_peak_dbtp <= std.max_true_peak_dbtp)
    return {"standard": std.name, "reference": std.reference, "target_lufs": std.target_lufs,
            "tolerance_lu": std.tolerance_lu, "max_true_peak_dbtp": std.max_true_peak_dbtp,
            "integrated_lufs": round(float(integrated_lufs), 2) if finite else integrated_lufs,
            "true_peak_dbtp": round(float(true_peak_dbtp), 2), "deviation_lu": round(deviation, 2) if finite else deviation,
            "loudness_ok": loud_ok, "true_peak_ok": peak_ok, "compliant": loud_ok and peak_ok}
FADE_S = 0.010  # fade in/out of each placed line (avoids clicks at the cut points)
DUCK_DB = -14.0  # gain of the original under the dub when there is no separation
DUCK_RAMP_S = 0.15


@dataclass
class PlacedLine:
    """One fitted line: float32 mono ``samples`` starting at ``start_s`` on the output timeline."""

    start_s: float
    samples: np.ndarray


@dataclass
class LoudnessReport:
    integrated_lufs: float
    true_peak_dbtp: float
    loudness_range_lu: float | None
    gain_db: float
    limiter_max_reduction_db: float


@dataclass
class MixResult:
    """Stems, all float32 ``(n_samples, 2)`` at ``sample_rate_hz``; ``mix = dialogue + music_effects``
    up to the final loudness gain and limiter."""

    dialogue: np.ndarray
    music_effects: np.ndarray
    mix: np.ndarray
    sample_rate_hz: int
    loudness: LoudnessReport
    details: dict = field(default_factory=dict)


def true_peak_dbtp(x: np.ndarray, sample_rate_hz: int) -> float:
    """True peak in dBTP: max |x| after polyphase oversampling to at least 192 kHz (4x at 48 kHz,
    2x at 96 kHz; ITU-R BS.1770-4 Annex 2)."""
    return 20 * np.log10(max(float(np.max(_true_peak_envelope(x, sample_rate_hz))), 1e-12))


def oversampling_factor(sample_rate_hz: int) -> int:
    """Oversampling of the true-peak meter: to >= 192 kHz, i.e. ``ceil(192000 / rate)`` (>= 1)."""
    return max(1, -(-192_000 // int(sample_rate_hz)))


TRUE_PEAK_BLOCK_SAMPLES = 1 << 18  # the oversampled signal is made block by block: bounded memory for any length
TRUE_PEAK_MARGIN_SAMPLES = 64  # > the polyphase filter's reach (10 input samples at 4x): blocks join exactly
LIMITER_LOOKAHEAD_S = 0.005  # the true-peak limiter's look-ahead (its attack and release), seconds


def _true_peak_envelope(x: np.ndarray, sample_rate_hz: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Per-sample true peak over channels of ``x[start:stop]``: max |.| of the oversampled values per
    input sample, float ``(stop - start,)``.

    Oversampled block by block (:data:`TRUE_PEAK_BLOCK_SAMPLES`), each block with a margin of
    input samples on both sides that covers the interpolation filter, so the values are those of
    one ``resample_poly`` over the whole signal while only a block's worth is held."""
    from scipy.signal import resample_poly

    k = oversampling_factor(sample_rate_hz)
    x2 = x if x.ndim == 2 else x[:, None]
    n = x2.shape[0]
    stop = n if stop is None else min(n, stop)
    env = np.empty(max(0, stop - start), dtype=np.result_type(x2.dtype, np.float32))
    m = TRUE_PEAK_MARGIN_SAMPLES
    for a in range(start, max(stop, start + 1), TRUE_PEAK_BLOCK_SAMPLES):
        b = min(stop, a + TRUE_PEAK_BLOCK_SAMPLES)
        if b <= a:
            break
        lo, hi = max(0, a - m), min(n, b + m)
        up = np.abs(resample_poly(x2[lo:hi], k, 1, axis=0))[(a - lo) * k:(b - lo) * k]
        env[a - start:b - start] = np.maximum(up.reshape(b - a, k, -1).max(axis=(1, 2)), np.abs(x2[a:b]).max(axis=1))
    return env


def integrated_loudness(x: np.ndarray, sample_rate_hz: int) -> float:
    """Integrated loudness in LUFS of float ``(n,)`` or ``(n, channels)`` samples (BS.1770-4
    K-weighting and gating, pyloudnorm's figures through the block-wise :mod:`lipdub.meter`:
    no whole-length float64 copy); -inf for silence."""
    if len(x) < int(0.4 * sample_rate_hz):  # shorter than one gating block
        return float("-inf")
    return meter.measure(x, sample_rate_hz).integrated_lufs()


def loudness_range_lu(x: np.ndarray, sample_rate_hz: int) -> float | None:
    """Loudness range (EBU Tech 3342) in LU as pyloudnorm computes it (block-wise, :mod:`lipdub.meter`);
    None when too short to measure."""
    if len(x) < 3 * sample_rate_hz:
        return None
    return meter.measure(x, sample_rate_hz, loudness_range=True).loudness_range_lu()


def limit_true_peak(x: np.ndarray, sample_rate_hz: int, ceiling_dbtp: float, lookahead_s: float = LIMITER_LOOKAHEAD_S,
                    in_place: bool = False) -> tuple[np.ndarray, float]:
    """Look-ahead peak limiter on the true-peak envelope.

    The gain needed at each sample, ``min(1, ceiling / true_peak)``, is spread by a minimum filter of
    width ``2L+1`` and smoothed by a moving average of width ``2L+1`` (L = look-ahead in samples); the
    average of minima over a window that contains the sample never exceeds the needed gain, so the
    peak is held while the gain moves smoothly (attack and release of L samples). The gain is made
    block by block (:data:`LIMITER_BLOCK_SAMPLES`); a block is written only once the next block's
    gain, which reads the samples before it, is known.

    Args:
        x: float32 ``(n,)`` or ``(n, channels)``.
        in_place: limit ``x`` itself (a float32 array the caller owns) instead of a copy.

    Returns:
        ``(limited, max_reduction_db)``; ``limited`` is ``x`` itself when nothing exceeds the ceiling.
    """
    ceiling = 10 ** (ceiling_dbtp / 20)
    half = max(1, int(lookahead_s * sample_rate_hz))
    out, min_gain, pending = None, 1.0, None
    for a in [*range(0, len(x), LIMITER_BLOCK_SAMPLES), len(x)]:
        b = min(len(x), a + LIMITER_BLOCK_SAMPLES)
        gain = _limiter_gain(x, sample_rate_hz, ceiling, half, a, b) if b > a else None
        if pending is not None:  # the previous block, now that this one's gain has read its samples
            if out is None:
                out = x if in_place else np.array(x, dtype=np.float32)
            pa, pg = pending
            out[pa:pa + len(pg)] = x[pa:pa + len(pg)] * (pg[:, None] if x.ndim == 2 else pg)
            min_gain = min(min_gain, float(pg.min()))
        pending = None if gain is None else (a, gain)
    if out is None:
        return x, 0.0
    return out, float(-20 * np.log10(min_gain))


#: The limiter's gain is made block by block: bounded memory for any length (more than its reach).
LIMITER_BLOCK_SAMPLES = 1 << 20


def _limiter_gain(x: np.ndarray, sample_rate_hz: int, ceiling: float, half: int, a: int, b: int) -> np.ndarray | None:
    """The limiter's gain over samples ``[a, b)`` (None: 1 throughout), from the needed gain over
    ``[a - 2 half, b + 2 half)``: the minimum and mean filters reach ``half`` samples each, so the
    block's values are those of the filters run over the whole signal."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    lo, hi = max(0, a - 2 * half), min(len(x), b + 2 * half)
    need = np.minimum(1.0, ceiling / np.maximum(_true_peak_envelope(x, sample_rate_hz, lo, hi), 1e-12))
    if need.min() >= 1.0:
        return None
    gain = minimum_filter1d(need, size=2 * half + 1, mode="nearest")
    gain = uniform_filter1d(gain, size=2 * half + 1, mode="nearest")
    gain = np.minimum(gain, need)[a - lo:b - lo]
    return None if gain.min() >= 1.0 else gain


def normalize_loudness(
    x: np.ndarray, sample_rate_hz: int, target_lufs: float, ceiling_dbtp: float, tolerance_lu: float = 0.1
) -> tuple[np.ndarray, LoudnessReport]:
    """Gain to ``target_lufs`` then true-peak limiting to ``ceiling_dbtp``, iterated (limiting lowers
    the loudness a little) until the loudness is within ``tolerance_lu`` or 4 passes are done.

    Silence (no measurable loudness) is returned unchanged.
    """
    measured = integrated_loudness(x, sample_rate_hz)
    if not np.isfinite(measured):
        return x, LoudnessReport(measured, true_peak_dbtp(x, sample_rate_hz), None, 0.0, 0.0)
    total_gain_db, max_red = 0.0, 0.0
    y = x
    for _ in range(4):
        gain_db = target_lufs - measured
        total_gain_db += gain_db
        y = None  # the previous pass's output is not kept beside the next
        y = np.multiply(x, 10 ** (total_gain_db / 20), dtype=np.float32)
        y, red = limit_true_peak(y, sample_rate_hz, ceiling_dbtp - 0.1, in_place=True)  # 0.1 dB margin for the filters
        max_red = max(max_red, red)
        measured = integrated_loudness(y, sample_rate_hz)
        if abs(measured - target_lufs) <= tolerance_lu:
            break
    tp = true_peak_dbtp(y, sample_rate_hz)
    if tp > ceiling_dbtp:  # inter-sample overs after the gain: a last static trim
        y *= np.float32(10 ** ((ceiling_dbtp - tp - 0.05) / 20))  # y is this function's own array
        measured = integrated_loudness(y, sample_rate_hz)
        tp = true_peak_dbtp(y, sample_rate_hz)
    return y, LoudnessReport(
        integrated_lufs=measured,
        true_peak_dbtp=tp,
        loudness_range_lu=loudness_range_lu(y, sample_rate_hz),
        gain_db=total_gain_db,
        limiter_max_reduction_db=max_red,
    )


def place_lines(lines: list[PlacedLine], n_samples: int, sample_rate_hz: int) -> np.ndarray:
    """Sum the lines into a mono dialogue track of ``n_samples`` with short fades at each edge."""
    track = np.zeros(n_samples, dtype=np.float32)
    fade = max(1, int(FADE_S * sample_rate_hz))
    for line in lines:
        s = line.samples.astype(np.float32).copy()
        if len(s) > 2 * fade:
            ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
            s[:fade] *= ramp
            s[-fade:] *= ramp[::-1]
        start = max(0, int(round(line.start_s * sample_rate_hz)))
        end = min(n_samples, start + len(s))
        if end > start:
            track[start:end] += s[: end - start]
    return track


def span_mask(spans_s: list[tuple[float, float]], n_samples: int, sample_rate_hz: int) -> np.ndarray:
    """float32 ``(n_samples,)``: 1 inside the spans (seconds), 0 outside, with ``DUCK_RAMP_S``
    linear ramps centred on each edge."""
    from scipy.ndimage import uniform_filter1d

    mask = np.zeros(n_samples, dtype=np.float32)
    for a, b in spans_s:
        mask[max(0, int(a * sample_rate_hz)) : min(n_samples, int(b * sample_rate_hz))] = 1.0
    ramp = max(1, int(DUCK_RAMP_S * sample_rate_hz))
    return uniform_filter1d(mask, size=ramp, mode="constant")


def duck_gain(spans_s: list[tuple[float, float]], n_samples: int, sample_rate_hz: int, duck_db: float = DUCK_DB) -> np.ndarray:
    """Gain curve (n_samples,) that is ``duck_db`` inside the spans and 0 dB outside, with
    ``DUCK_RAMP_S`` linear ramps, so the original is lowered under the dub."""
    return (10 ** (duck_db * span_mask(spans_s, n_samples, sample_rate_hz) / 20)).astype(np.float32)


def check_targets(target_lufs: float, true_peak_ceiling_dbtp: float) -> None:
    """Raise :class:`ConfigError` for a loudness target (LUFS) or true-peak ceiling (dBTP) out of range."""
    if not -70 <= target_lufs <= -5:
        raise ConfigError(f"--loudness {target_lufs:g} LUFS is out of range", "use a loudness target from -70 to -5 LUFS (e.g. -24 or -23)")
    if not -20 <= true_peak_ceiling_dbtp <= 0:
        raise ConfigError(f"true-peak ceiling {true_peak_ceiling_dbtp} dBTP is out of range", "use a value from -20 to 0 (e.g. -2)")


def mix(
    lines: list[PlacedLine],
    *,
    original: np.ndarray | None,
    music_effects: np.ndarray | None,
    source_dialogue: np.ndarray | None,
    sample_rate_hz: int,
    duck_spans_s: list[tuple[float, float]],
    target_lufs: float = -24.0,
    true_peak_ceiling_dbtp: float = -2.0,
    keep_nonverbal: bool = True,
) -> MixResult:
    """Mix the dub.

    Args:
        lines: the fitted lines (mono, at ``sample_rate_hz``).
        original: the source mix, float32 ``(n, 2)``; sets the output length. None when both
            ``music_effects`` and ``source_dialogue`` are given (then only its length would be used,
            which ``music_effects`` gives: a caller need not hold a whole-length copy for it).
        music_effects: the M&E stem ``(n, 2)`` from separation, or None to duck ``original`` instead.
        source_dialogue: the source dialogue stem ``(n, 2)`` or None; the dub's dialogue is set to its
            loudness so the dialogue/bed balance of the source is kept (with no stem, the original's
            loudness over ``duck_spans_s`` stands in).
        duck_spans_s: spans (seconds) where speech is (source and dub), ducked when there is no M&E.
        keep_nonverbal: with an M&E stem and a source dialogue stem, keep the source dialogue
            *outside* ``duck_spans_s`` (laughs, breaths, sighs and reactions that were not transcribed
            as lines: the actor is still seen making them), with the ducking ramps at the edges; the
            output then equals the source mix wherever nobody speaks a line. Without separation the
            ducked original keeps them already.
        target_lufs: integrated loudness target of the full mix.
        true_peak_ceiling_dbtp: true-peak ceiling of the full mix.

    Raises:
        ConfigError: target or ceiling out of range.
    """
    check_targets(target_lufs, true_peak_ceiling_dbtp)
    if original is None and (music_effects is None or source_dialogue is None):
        raise ValueError("mix() needs the original unless both the M&E and the source dialogue stems are given")
    n = (original if original is not None else music_effects).shape[0]
    dialogue_mono = place_lines(lines, n, sample_rate_hz)

    # Dialogue level: match the source dialogue's loudness (keeps the source's dialogue/bed balance).
    if source_dialogue is not None:
        ref = integrated_loudness(source_dialogue, sample_rate_hz)
    else:
        ref = _loudness_over(original, duck_spans_s, sample_rate_hz)
    dub_l = integrated_loudness(dialogue_mono, sample_rate_hz)
    dial_gain_db = (ref - dub_l) if np.isfinite(ref) and np.isfinite(dub_l) else 0.0
    dialogue_mono *= np.float32(10 ** (dial_gain_db / 20))
    dialogue = np.repeat(dialogue_mono[:, None], 2, axis=1)
    del dialogue_mono

    if music_effects is not None:
        bed = music_effects
        ducked = False
    else:
        bed = original * duck_gain(duck_spans_s, n, sample_rate_hz)[:, None]
        ducked = True
    nonverbal_s = 0.0
    if keep_nonverbal and music_effects is not None and source_dialogue is not None:
        keep = 1.0 - span_mask(duck_spans_s, n, sample_rate_hz)  # 1 outside the spans, 0 inside, ramped
        for a in range(0, n, MIX_BLOCK_SAMPLES):  # in blocks: no whole-length temporary
            b = min(n, a + MIX_BLOCK_SAMPLES)
            dialogue[a:b] += source_dialogue[a:b] * keep[a:b, None]
        nonverbal_s = float((keep > 0.5).sum()) / sample_rate_hz
        del keep
    full = np.add(dialogue, bed, dtype=np.float32)
    full, report = normalize_loudness(full, sample_rate_hz, target_lufs, true_peak_ceiling_dbtp)
    post_gain = np.float32(10 ** (report.gain_db / 20))
    dialogue *= post_gain  # the stems at the mix's gain, in place (``bed`` may be the caller's array)
    return MixResult(
        dialogue=dialogue,
        music_effects=np.multiply(bed, post_gain, dtype=np.float32),
        mix=full,
        sample_rate_hz=sample_rate_hz,
        loudness=report,
        details={"dialogue_gain_db": round(dial_gain_db, 2), "bed": "ducked original" if ducked else "M&E stem",
                 "source_dialogue_kept_s": round(nonverbal_s, 3)},
    )


MIX_BLOCK_SAMPLES = 1 << 20  # samples per block where the mix sums whole-length stems


def _loudness_over(x: np.ndarray, spans_s: list[tuple[float, float]], sample_rate_hz: int) -> float:
    parts = [x[int(a * sample_rate_hz) : int(b * sample_rate_hz)] for a, b in spans_s]
    parts = [p for p in parts if len(p)]
    if not parts:
        return integrated_loudness(x, sample_rate_hz)
    return integrated_loudness(np.concatenate(parts), sample_rate_hz)
