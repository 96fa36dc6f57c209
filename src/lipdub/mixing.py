"""Stage 9, mix: place the fitted lines, lay them over the M&E bed, and set the loudness.

Loudness follows ITU-R BS.1770-4 / EBU R128 as measured by pyloudnorm: the full mix is normalized to
an integrated loudness target and its true peak is held at or below a ceiling by a look-ahead limiter
working on the 4x oversampled signal (the BS.1770-4 Annex 2 true-peak method). The targets people
pick are named for their standards in :mod:`lipdub.loudness_standards`.

One chain makes the mix, whatever holds the audio: every signal of it is a function of a sample
range (:class:`ArraySource` for arrays, :class:`lipdub.audio.AudioFile` for WAV stems, the lines
through :class:`LineTrack`, the spans' masks, the normalizer and limiter with the margins their
filters reach), and each pass (loudness of the source dialogue and of the dub, the normalizer's
passes, the final writing) streams the blocks in order. :func:`mix` runs it from arrays to arrays
(tests, the in-memory API), :func:`mix_files` from WAV files to WAV files (the pipeline: no
whole-length array, a 10-minute programme is 230 MB per 48 kHz stereo float32 stem).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import meter
from .audio import ArraySource, AudioFile
from .errors import ConfigError

log = logging.getLogger(__name__)


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


def true_peak_dbtp(x, sample_rate_hz: int) -> float:
    """True peak in dBTP: max |x| after polyphase oversampling to at least 192 kHz (4x at 48 kHz,
    2x at 96 kHz; ITU-R BS.1770-4 Annex 2).

    Args:
        x: float ``(n,)`` or ``(n, channels)`` samples, or a block source of them
            (:class:`lipdub.audio.ArraySource`, :class:`lipdub.audio.AudioFile`), read a block at a time.
    """
    src = x if hasattr(x, "read") else ArraySource(x)
    return _peak_dbtp(src.n_samples, sample_rate_hz, src.read)


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


#: Samples (per channel) the mix chain makes at once; memory is a few times this, whatever the length.
BLOCK_SAMPLES = 1 << 20


class LineTrack:
    """The fitted lines laid on a mono track of ``n_samples``, each with :data:`FADE_S` fades at its
    edges (when longer than two fades), summed where they overlap; ``read(a, b)`` gives float32
    ``(b - a,)``, the samples ``[a, b)`` of that track, without making the rest."""

    def __init__(self, lines: list[PlacedLine], n_samples: int, sample_rate_hz: int) -> None:
        fade = max(1, int(FADE_S * sample_rate_hz))
        self.n_samples, self._lines = int(n_samples), []
        for line in lines:
            s = line.samples.astype(np.float32).copy()
            if len(s) > 2 * fade:
                ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
                s[:fade] *= ramp
                s[-fade:] *= ramp[::-1]
            self._lines.append((max(0, int(round(line.start_s * sample_rate_hz))), s))

    def read(self, a: int, b: int) -> np.ndarray:
        out = np.zeros(b - a, np.float32)
        for start, s in self._lines:
            lo, hi = max(a, start), min(b, start + len(s), self.n_samples)
            if hi > lo:
                out[lo - a:hi - a] += s[lo - start:hi - start]
        return out


def place_lines(lines: list[PlacedLine], n_samples: int, sample_rate_hz: int) -> np.ndarray:
    """Sum the lines into a mono dialogue track of ``n_samples`` with short fades at each edge
    (float32 ``(n_samples,)``; :class:`LineTrack` gives it a block at a time)."""
    return LineTrack(lines, n_samples, sample_rate_hz).read(0, n_samples)


def _span_mask_range(spans_s: list[tuple[float, float]], lo: int, hi: int, sr: int) -> np.ndarray:
    """:func:`span_mask` of the whole signal, its samples ``[lo, hi)`` (exact away from ``lo`` and
    ``hi`` by the ramp's half width; at the signal's own ends, exact)."""
    from scipy.ndimage import uniform_filter1d

    mask = np.zeros(hi - lo, dtype=np.float32)
    for a, b in spans_s:
        s0, e0 = max(lo, int(a * sr)), min(hi, int(b * sr))
        if e0 > s0:
            mask[s0 - lo:e0 - lo] = 1.0
    return uniform_filter1d(mask, size=max(1, int(DUCK_RAMP_S * sr)), mode="constant")


def span_mask(spans_s: list[tuple[float, float]], n_samples: int, sample_rate_hz: int) -> np.ndarray:
    """float32 ``(n_samples,)``: 1 inside the spans (seconds), 0 outside, with ``DUCK_RAMP_S``
    linear ramps centred on each edge."""
    return _span_mask_range(spans_s, 0, n_samples, sample_rate_hz)


def _span_mask_block(spans_s: list[tuple[float, float]], n: int, sr: int, a: int, b: int) -> np.ndarray:
    """:func:`span_mask` over ``[a, b)`` of a signal of ``n`` samples, from the mask over the ramp's reach around it."""
    m = max(1, int(DUCK_RAMP_S * sr)) + 1
    lo, hi = max(0, a - m), min(n, b + m)
    return _span_mask_range(spans_s, lo, hi, sr)[a - lo:b - lo]


def duck_gain(spans_s: list[tuple[float, float]], n_samples: int, sample_rate_hz: int, duck_db: float = DUCK_DB) -> np.ndarray:
    """Gain curve (n_samples,) that is ``duck_db`` inside the spans and 0 dB outside, with
    ``DUCK_RAMP_S`` linear ramps, so the original is lowered under the dub."""
    return (10 ** (duck_db * span_mask(spans_s, n_samples, sample_rate_hz) / 20)).astype(np.float32)


def _blocks(n: int):
    return ((a, min(n, a + BLOCK_SAMPLES)) for a in range(0, n, BLOCK_SAMPLES))


def _limiter_gain(x: np.ndarray, sample_rate_hz: int, ceiling: float, half: int, a: int, b: int) -> np.ndarray | None:
    """The limiter's gain over samples ``[a, b)`` of ``x`` (None: 1 throughout), from the needed gain
    over ``[a - 2 half, b + 2 half)``: the minimum and mean filters reach ``half`` samples each, so the
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


class _Limited:
    """A signal ``read(a, b)`` (float32 ``(b - a, channels)`` of ``n`` samples) times ``gain``, through
    the look-ahead true-peak limiter, times a final static ``trim``, over any range ``[a, b)``: made
    from the signal over the limiter's reach around the range (see :func:`limit_true_peak`)."""

    def __init__(self, read, n: int, sr: int, gain: float, ceiling: float, lookahead_s: float = LIMITER_LOOKAHEAD_S,
                 trim: np.float32 | None = None) -> None:
        self.read, self.n, self.sr, self.gain, self.ceiling, self.trim = read, n, sr, gain, ceiling, trim
        self.half = max(1, int(lookahead_s * sr))
        self.min_gain = 1.0

    def range(self, a: int, b: int) -> np.ndarray:
        reach = 2 * self.half + TRUE_PEAK_MARGIN_SAMPLES
        lo, hi = max(0, a - reach), min(self.n, b + reach)
        y = np.multiply(self.read(lo, hi), self.gain, dtype=np.float32)
        g = _limiter_gain(y, self.sr, self.ceiling, self.half, a - lo, b - lo)
        out = y[a - lo:b - lo]
        if g is not None:
            out = out * g[:, None]
            self.min_gain = min(self.min_gain, float(g.min()))
        if self.trim is not None:
            out *= self.trim
        return out

    def measure(self) -> tuple[float, float]:
        """``(integrated LUFS, true peak dBTP)`` of the whole output, one pass."""
        sr, n = self.sr, self.n
        m, peak = None, 0.0
        for a, b in _blocks(n):
            lo, hi = max(0, a - TRUE_PEAK_MARGIN_SAMPLES), min(n, b + TRUE_PEAK_MARGIN_SAMPLES)
            y = self.range(lo, hi)
            m = m or meter.StreamingMeter(sr, y.shape[1])
            m.add(y[a - lo:b - lo])
            peak = max(peak, float(np.max(_true_peak_envelope(y, sr, a - lo, b - lo))))
        lufs = m.integrated_lufs() if m is not None and n >= int(0.4 * sr) else float("-inf")
        return lufs, 20 * np.log10(max(peak, 1e-12))


def limit_true_peak(x: np.ndarray, sample_rate_hz: int, ceiling_dbtp: float,
                    lookahead_s: float = LIMITER_LOOKAHEAD_S) -> tuple[np.ndarray, float]:
    """Look-ahead peak limiter on the true-peak envelope.

    The gain needed at each sample, ``min(1, ceiling / true_peak)``, is spread by a minimum filter of
    width ``2L+1`` and smoothed by a moving average of width ``2L+1`` (L = look-ahead in samples); the
    average of minima over a window that contains the sample never exceeds the needed gain, so the
    peak is held while the gain moves smoothly (attack and release of L samples). The gain is made
    block by block (:data:`BLOCK_SAMPLES`, each block from the samples within the filters' reach).

    Args:
        x: float32 ``(n,)`` or ``(n, channels)``.

    Returns:
        ``(limited, max_reduction_db)``, float32 of ``x``'s shape; ``limited`` is ``x`` itself when
        nothing exceeds the ceiling.
    """
    src = ArraySource(x)
    lim = _Limited(src.read, src.n_samples, sample_rate_hz, 1.0, 10 ** (ceiling_dbtp / 20), lookahead_s)
    out = np.empty((src.n_samples, src.channels), np.float32)
    for a, b in _blocks(src.n_samples):
        out[a:b] = lim.range(a, b)
    if lim.min_gain >= 1.0:
        return x, 0.0
    return out.reshape(np.shape(x)), float(-20 * np.log10(lim.min_gain))


def _stream_lufs(n: int, sr: int, read) -> float:
    """Integrated loudness (LUFS) of the signal ``read(a, b)`` gives, a block at a time."""
    if n < int(0.4 * sr):
        return float("-inf")
    m = None
    for a, b in _blocks(n):
        x = read(a, b)
        m = m or meter.StreamingMeter(sr, 1 if x.ndim == 1 else x.shape[1])
        m.add(x)
    return m.integrated_lufs()


def _peak_dbtp(n: int, sr: int, read) -> float:
    """True peak (dBTP) of the signal ``read(a, b)`` gives, a block (and the interpolator's reach) at a time."""
    peak = 0.0
    for a, b in _blocks(n):
        lo, hi = max(0, a - TRUE_PEAK_MARGIN_SAMPLES), min(n, b + TRUE_PEAK_MARGIN_SAMPLES)
        peak = max(peak, float(np.max(_true_peak_envelope(read(lo, hi), sr, a - lo, b - lo))))
    return 20 * np.log10(max(peak, 1e-12))


def _normalize(read, n: int, sr: int, target_lufs: float, ceiling_dbtp: float,
               tolerance_lu: float = 0.1) -> tuple[_Limited | None, LoudnessReport]:
    """The normalizer of :func:`normalize_loudness` on the signal ``read(a, b)`` gives, streamed: the
    normalized signal (None: silence, left as it is) and its report (LRA: None, measured by the
    caller while writing)."""
    measured = _stream_lufs(n, sr, read)
    if not np.isfinite(measured):
        return None, LoudnessReport(measured, _peak_dbtp(n, sr, read), None, 0.0, 0.0)
    total_gain_db, max_red = 0.0, 0.0
    ceiling = 10 ** ((ceiling_dbtp - 0.1) / 20)  # 0.1 dB margin for the filters
    for _ in range(4):
        total_gain_db += target_lufs - measured
        out = _Limited(read, n, sr, 10 ** (total_gain_db / 20), ceiling)
        measured, tp = out.measure()
        max_red = max(max_red, -20 * np.log10(out.min_gain))
        if abs(measured - target_lufs) <= tolerance_lu:
            break
    if tp > ceiling_dbtp:  # inter-sample overs after the gain: a last static trim
        out.trim = np.float32(10 ** ((ceiling_dbtp - tp - 0.05) / 20))
        measured, tp = out.measure()
    return out, LoudnessReport(measured, tp, None, total_gain_db, max_red)


def normalize_loudness(
    x: np.ndarray, sample_rate_hz: int, target_lufs: float, ceiling_dbtp: float, tolerance_lu: float = 0.1
) -> tuple[np.ndarray, LoudnessReport]:
    """Gain to ``target_lufs`` then true-peak limiting to ``ceiling_dbtp`` (less a 0.1 dB margin for
    the filters), iterated (limiting lowers the loudness a little) until the loudness is within
    ``tolerance_lu`` or 4 passes are done; a last static trim if inter-sample overs remain. The same
    normalizer as the mix's (block by block, on an :class:`ArraySource`).

    Args:
        x: float32 ``(n,)`` or ``(n, channels)``.

    Returns:
        ``(normalized float32 array of x's shape, report)``; silence (no measurable loudness) is
        returned unchanged.
    """
    src = ArraySource(x)
    n, sr = src.n_samples, sample_rate_hz
    out, report = _normalize(src.read, n, sr, target_lufs, ceiling_dbtp, tolerance_lu)
    if out is None:
        return x, report
    y = np.empty((n, src.channels), np.float32)
    for a, b in _blocks(n):
        y[a:b] = out.range(a, b)
    y = y.reshape(np.shape(x))
    report.loudness_range_lu = loudness_range_lu(y, sr)
    return y, report


def check_targets(target_lufs: float, true_peak_ceiling_dbtp: float) -> None:
    """Raise :class:`ConfigError` for a loudness target (LUFS) or true-peak ceiling (dBTP) out of range."""
    if not -70 <= target_lufs <= -5:
        raise ConfigError(f"--loudness {target_lufs:g} LUFS is out of range", "use a loudness target from -70 to -5 LUFS (e.g. -24 or -23)")
    if not -20 <= true_peak_ceiling_dbtp <= 0:
        raise ConfigError(f"true-peak ceiling {true_peak_ceiling_dbtp} dBTP is out of range", "use a value from -20 to 0 (e.g. -2)")


@dataclass
class _Chain:
    """The mix's signals over any sample range ``[a, b)`` (float32), from its sources (each with
    ``read(a, b)``: :class:`ArraySource` or :class:`lipdub.audio.AudioFile`): see :func:`mix`."""

    dub: LineTrack
    n: int
    sr: int
    spans: list[tuple[float, float]]
    me: object | None
    original: object | None
    source_dialogue: object | None
    keep_nonverbal: bool
    dial_gain: float = 1.0  # the dub's gain (a float32 scalar once set)

    @property
    def keeps(self) -> bool:
        return self.keep_nonverbal and self.me is not None and self.source_dialogue is not None

    def dialogue(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The dub's dialogue ``(b - a, 2)`` (with the kept source sounds) and the keep mask (or None)."""
        mono = self.dub.read(a, b)
        mono *= self.dial_gain
        d = np.repeat(mono[:, None], 2, axis=1)
        keep = None
        if self.keeps:
            keep = 1.0 - _span_mask_block(self.spans, self.n, self.sr, a, b)
            d += self.source_dialogue.read(a, b) * keep[:, None]
        return d, keep

    def bed(self, a: int, b: int) -> np.ndarray:
        if self.me is not None:
            return self.me.read(a, b)
        duck = (10 ** (DUCK_DB * _span_mask_block(self.spans, self.n, self.sr, a, b) / 20)).astype(np.float32)
        return self.original.read(a, b) * duck[:, None]

    def full(self, a: int, b: int) -> np.ndarray:
        return np.add(self.dialogue(a, b)[0], self.bed(a, b), dtype=np.float32)


def _loudness_over(source, spans_s: list[tuple[float, float]], sr: int) -> float:
    """The loudness of ``source``'s samples over the spans, one after the other (the whole signal
    when they cover nothing), read a block at a time."""
    n = source.n_samples
    parts = [slice(int(a * sr), int(b * sr)).indices(n)[:2] for a, b in spans_s]
    parts = [(a, b) for a, b in parts if b > a] or [(0, n)]
    if sum(b - a for a, b in parts) < int(0.4 * sr):
        return float("-inf")
    m = meter.StreamingMeter(sr, source.channels)
    for a, b in parts:
        for c in range(a, b, BLOCK_SAMPLES):
            m.add(source.read(c, min(b, c + BLOCK_SAMPLES)))
    return m.integrated_lufs()


def _write(chain: _Chain, out: _Limited | None, post_gain: np.float32, writers: dict) -> tuple[float | None, int]:
    """Write the three stems (``writers["dialogue" | "me" | "mix"].write(block)``) a block at a time;
    ``(LRA of the mix or None, samples of kept source sound)``."""
    n, sr = chain.n, chain.sr
    lra = meter.StreamingMeter(sr, 2, loudness_range=True) if out is not None and n >= 3 * sr else None
    kept = 0
    for a, b in _blocks(n):
        d, keep = chain.dialogue(a, b)
        bed = chain.bed(a, b)
        mixed = out.range(a, b) if out is not None else np.add(d, bed, dtype=np.float32)
        if lra is not None:
            lra.add(mixed)
        if keep is not None:
            kept += int((keep > 0.5).sum())
        d *= post_gain
        writers["dialogue"].write(d)
        writers["me"].write(np.multiply(bed, post_gain, dtype=np.float32))
        writers["mix"].write(mixed)
    return (lra.loudness_range_lu() if lra is not None else None), kept


def _mix_chain(lines: list[PlacedLine], sources: dict, sr: int, duck_spans_s: list[tuple[float, float]], writers: dict,
               target_lufs: float, ceiling_dbtp: float, keep_nonverbal: bool) -> tuple[LoudnessReport, dict]:
    """The mix (see :func:`mix`) from ``sources`` (``"original"``, ``"me"``, ``"sd"``: block sources)
    into ``writers``; returns the loudness report and the details."""
    n = (sources.get("me") or sources["original"]).n_samples
    for name, s in sources.items():
        if s.n_samples < n:
            raise ValueError(f"mix: the {name} stem has {s.n_samples} samples, fewer than the programme's {n}")
    chain = _Chain(LineTrack(lines, n, sr), n, sr, duck_spans_s, sources.get("me"), sources.get("original"), sources.get("sd"),
                   keep_nonverbal)
    # Dialogue level: match the source dialogue's loudness (keeps the source's dialogue/bed balance).
    if "sd" in sources:
        ref = _stream_lufs(n, sr, sources["sd"].read)
    else:
        ref = _loudness_over(sources["original"], duck_spans_s, sr)
    dub_l = _stream_lufs(n, sr, chain.dub.read)
    dial_gain_db = (ref - dub_l) if np.isfinite(ref) and np.isfinite(dub_l) else 0.0
    chain.dial_gain = np.float32(10 ** (dial_gain_db / 20))
    out, report = _normalize(chain.full, n, sr, target_lufs, ceiling_dbtp)
    post_gain = np.float32(10 ** (report.gain_db / 20))
    report.loudness_range_lu, kept = _write(chain, out, post_gain, writers)
    details = {"dialogue_gain_db": round(dial_gain_db, 2), "bed": "M&E stem" if chain.me is not None else "ducked original",
               "source_dialogue_kept_s": round(float(kept) / sr, 3)}
    return report, details


class _ArrayWriter:
    """Blocks written one after the other into a float32 ``(n, 2)`` array."""

    def __init__(self, n: int) -> None:
        self.array, self._at = np.empty((n, 2), np.float32), 0

    def write(self, block: np.ndarray) -> None:
        self.array[self._at:self._at + len(block)] = block
        self._at += len(block)


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
    """Mix the dub, arrays in, arrays out (:func:`mix_files` is the same chain from WAV files to WAV
    files): the lines placed (:class:`LineTrack`), set to the source dialogue's loudness, over the
    bed, normalized (:func:`normalize_loudness`'s normalizer), a block at a time.

    Args:
        lines: the fitted lines (mono, at ``sample_rate_hz``).
        original: the source mix, float32 ``(n, 2)``. None when both ``music_effects`` and
            ``source_dialogue`` are given (only its length would be used, which ``music_effects``
            gives: a caller need not hold a whole-length copy for it).
        music_effects: the M&E stem ``(n, 2)`` from separation (it sets the output length when
            given, else ``original`` does), or None to duck ``original`` instead.
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

    Returns:
        A :class:`MixResult` (float32 ``(n, 2)`` stems).

    Raises:
        ConfigError: target or ceiling out of range.
        ValueError: no ``original`` without both stems; a stem shorter than the programme.
    """
    check_targets(target_lufs, true_peak_ceiling_dbtp)
    if original is None and (music_effects is None or source_dialogue is None):
        raise ValueError("mix() needs the original unless both the M&E and the source dialogue stems are given")
    sources = {k: ArraySource(x) for k, x in (("original", original), ("me", music_effects), ("sd", source_dialogue)) if x is not None}
    n = (sources.get("me") or sources["original"]).n_samples
    writers = {k: _ArrayWriter(n) for k in ("dialogue", "me", "mix")}
    report, details = _mix_chain(lines, sources, sample_rate_hz, duck_spans_s, writers, target_lufs, true_peak_ceiling_dbtp,
                                 keep_nonverbal)
    return MixResult(dialogue=writers["dialogue"].array, music_effects=writers["me"].array, mix=writers["mix"].array,
                     sample_rate_hz=sample_rate_hz, loudness=report, details=details)


def mix_files(lines: list[PlacedLine], *, original: str | os.PathLike | None, music_effects: str | os.PathLike | None,
              source_dialogue: str | os.PathLike | None, duck_spans_s: list[tuple[float, float]], outputs: dict[str, Path],
              target_lufs: float = -24.0, true_peak_ceiling_dbtp: float = -2.0, keep_nonverbal: bool = True) -> tuple[LoudnessReport, dict]:
    """:func:`mix` from WAV stems to WAV stems, a block at a time: no whole-length array of audio
    (a 10-minute programme is 230 MB per 48 kHz stereo float32 stem).

    Args:
        lines: the fitted lines (float32 mono at the stems' rate).
        original / music_effects / source_dialogue: WAV paths as :func:`mix` takes the arrays
            (``original`` may be None when both others are given: only their length is needed).
        outputs: ``{"dialogue": path, "me": path, "mix": path}``: 48 kHz stereo 32-bit float WAVs,
            each written to a temporary name and renamed when complete.

    Returns:
        ``(loudness report, details)`` as :class:`MixResult` gives them.

    Raises:
        ConfigError: target or ceiling out of range.
        ValueError: no ``original`` without both stems; a stem shorter than the programme.
    """
    import soundfile as sf

    check_targets(target_lufs, true_peak_ceiling_dbtp)
    if original is None and (music_effects is None or source_dialogue is None):
        raise ValueError("mix_files() needs the original unless both the M&E and the source dialogue stems are given")
    sources = {k: AudioFile(p) for k, p in (("original", original), ("me", music_effects), ("sd", source_dialogue)) if p is not None}
    try:
        sr = next(iter(sources.values())).sample_rate_hz
        tmps = {k: Path(p).with_name(f".{Path(p).name}.tmp") for k, p in outputs.items()}
        for t in tmps.values():
            t.parent.mkdir(parents=True, exist_ok=True)
        writers = {k: sf.SoundFile(os.fspath(t), "w", sr, 2, subtype="FLOAT", format="WAV") for k, t in tmps.items()}
        try:
            result = _mix_chain(lines, sources, sr, duck_spans_s, writers, target_lufs, true_peak_ceiling_dbtp, keep_nonverbal)
        finally:
            for f in writers.values():
                f.close()
        for k, t in tmps.items():
            os.replace(t, outputs[k])
        return result
    finally:
        for s in sources.values():
            s.close()
