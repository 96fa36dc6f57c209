"""Stage 9's mix made a block at a time, from WAV stems to WAV stems: :func:`mix_files` is
:func:`lipdub.mixing.mix` (same lines, bed, ducking, kept non-verbal sounds, loudness gain and
true-peak limiter, to float rounding) with no whole-length array of audio.

A 10-minute programme is 230 MB per 48 kHz stereo float32 stem, and the whole-array mix holds half a
dozen of them at once. Here every signal of the chain is a function of a sample range: a block of the
output is made from the same block of the input stems (read with soundfile), the lines that fall into
it and the spans' masks, plus the margins the filters reach (the true-peak interpolator, the limiter's
minimum and mean filters, the ducking ramps); each pass (loudness of the source dialogue and of the
dub, the normalizer's passes, the final writing) streams the blocks in order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from . import meter, mixing
from .mixing import LoudnessReport, PlacedLine

#: Output samples made at once (per channel); memory is a few times this, whatever the length.
BLOCK_SAMPLES = 1 << 20


class _Stem:
    """A WAV stem read a block at a time: float32 ``(b - a, channels)`` for ``read(a, b)``."""

    def __init__(self, path: str | os.PathLike) -> None:
        self._file = sf.SoundFile(os.fspath(path))
        self.n_samples, self.channels, self.sample_rate_hz = self._file.frames, self._file.channels, self._file.samplerate

    def read(self, a: int, b: int) -> np.ndarray:
        self._file.seek(a)
        return self._file.read(b - a, dtype="float32", always_2d=True)

    def close(self) -> None:
        self._file.close()


@dataclass
class _Chain:
    """The mix's signals over any sample range ``[a, b)`` (float32): see :func:`lipdub.mixing.mix`."""

    lines: list[tuple[int, np.ndarray]]  # (start sample, faded samples) as place_lines places them
    n: int
    sr: int
    spans: list[tuple[float, float]]
    me: _Stem | None
    original: _Stem | None
    source_dialogue: _Stem | None
    keep_nonverbal: bool
    dial_gain: float = 1.0  # the dub's gain (a float32 scalar once set)

    def dub_mono(self, a: int, b: int) -> np.ndarray:
        out = np.zeros(b - a, np.float32)
        for start, s in self.lines:
            lo, hi = max(a, start), min(b, start + len(s), self.n)
            if hi > lo:
                out[lo - a:hi - a] += s[lo - start:hi - start]
        return out

    def _mask(self, a: int, b: int) -> np.ndarray:
        """:func:`lipdub.mixing.span_mask` over ``[a, b)``, from the mask over the ramp's reach around it."""
        m = max(1, int(mixing.DUCK_RAMP_S * self.sr)) + 1
        lo, hi = max(0, a - m), min(self.n, b + m)
        return _span_mask_range(self.spans, lo, hi, self.sr)[a - lo:b - lo]

    @property
    def keeps(self) -> bool:
        return self.keep_nonverbal and self.me is not None and self.source_dialogue is not None

    def dialogue(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The dub's dialogue ``(b - a, 2)`` (with the kept source sounds) and the keep mask (or None)."""
        mono = self.dub_mono(a, b)
        mono *= self.dial_gain
        d = np.repeat(mono[:, None], 2, axis=1)
        keep = None
        if self.keeps:
            keep = 1.0 - self._mask(a, b)
            d += self.source_dialogue.read(a, b) * keep[:, None]
        return d, keep

    def bed(self, a: int, b: int) -> np.ndarray:
        if self.me is not None:
            return self.me.read(a, b)
        duck = (10 ** (mixing.DUCK_DB * self._mask(a, b) / 20)).astype(np.float32)
        return self.original.read(a, b) * duck[:, None]

    def full(self, a: int, b: int) -> np.ndarray:
        return np.add(self.dialogue(a, b)[0], self.bed(a, b), dtype=np.float32)


def _span_mask_range(spans_s: list[tuple[float, float]], lo: int, hi: int, sr: int) -> np.ndarray:
    """:func:`lipdub.mixing.span_mask` of the whole signal, its samples ``[lo, hi)`` (exact away from
    ``lo`` and ``hi`` by the ramp's half width; at the signal's own ends, exact)."""
    from scipy.ndimage import uniform_filter1d

    mask = np.zeros(hi - lo, dtype=np.float32)
    for a, b in spans_s:
        s0, e0 = max(lo, int(a * sr)), min(hi, int(b * sr))
        if e0 > s0:
            mask[s0 - lo:e0 - lo] = 1.0
    return uniform_filter1d(mask, size=max(1, int(mixing.DUCK_RAMP_S * sr)), mode="constant")


def _blocks(n: int):
    return ((a, min(n, a + BLOCK_SAMPLES)) for a in range(0, n, BLOCK_SAMPLES))


class _Normalized:
    """The normalizer's output over any range: ``full * gain``, limited (block by block, with the
    limiter's reach around the range), times a final static ``trim``."""

    def __init__(self, chain: _Chain, gain: float, ceiling: float, trim: np.float32 | None = None) -> None:
        self.chain, self.gain, self.ceiling, self.trim = chain, gain, ceiling, trim
        self.half = max(1, int(mixing.LIMITER_LOOKAHEAD_S * chain.sr))  # as mixing.limit_true_peak
        self.min_gain = 1.0

    def range(self, a: int, b: int) -> np.ndarray:
        n, reach = self.chain.n, 2 * self.half + mixing.TRUE_PEAK_MARGIN_SAMPLES
        lo, hi = max(0, a - reach), min(n, b + reach)
        y = np.multiply(self.chain.full(lo, hi), self.gain, dtype=np.float32)
        g = mixing._limiter_gain(y, self.chain.sr, self.ceiling, self.half, a - lo, b - lo)
        out = y[a - lo:b - lo]
        if g is not None:
            out = out * g[:, None]
            self.min_gain = min(self.min_gain, float(g.min()))
        if self.trim is not None:
            out *= self.trim
        return out

    def measure(self, lra: bool = False) -> tuple[float, float, meter.StreamingMeter]:
        """``(integrated LUFS, true peak dBTP, meter)`` of the whole output, one pass."""
        sr, n = self.chain.sr, self.chain.n
        m, peak = meter.StreamingMeter(sr, 2, loudness_range=lra), 0.0
        for a, b in _blocks(n):
            lo, hi = max(0, a - mixing.TRUE_PEAK_MARGIN_SAMPLES), min(n, b + mixing.TRUE_PEAK_MARGIN_SAMPLES)
            y = self.range(lo, hi)
            m.add(y[a - lo:b - lo])
            peak = max(peak, float(np.max(mixing._true_peak_envelope(y, sr, a - lo, b - lo))))
        lufs = m.integrated_lufs() if n >= int(0.4 * sr) else float("-inf")
        return lufs, 20 * np.log10(max(peak, 1e-12)), m


def _stream_lufs(n: int, sr: int, block) -> float:
    if n < int(0.4 * sr):
        return float("-inf")
    m = None
    for a, b in _blocks(n):
        x = block(a, b)
        m = m or meter.StreamingMeter(sr, 1 if x.ndim == 1 else x.shape[1])
        m.add(x)
    return m.integrated_lufs()


def _peak_dbtp(n: int, sr: int, block) -> float:
    """True peak (dBTP) of the signal ``block(a, b)`` gives, a block (and the interpolator's reach) at a time."""
    peak = 0.0
    for a, b in _blocks(n):
        lo, hi = max(0, a - mixing.TRUE_PEAK_MARGIN_SAMPLES), min(n, b + mixing.TRUE_PEAK_MARGIN_SAMPLES)
        peak = max(peak, float(np.max(mixing._true_peak_envelope(block(lo, hi), sr, a - lo, b - lo))))
    return 20 * np.log10(max(peak, 1e-12))


def _normalize(chain: _Chain, target_lufs: float, ceiling_dbtp: float, tolerance_lu: float = 0.1) -> tuple[_Normalized | None, LoudnessReport]:
    """:func:`lipdub.mixing.normalize_loudness` of ``chain.full``, streamed: the normalized signal
    (None: silence, left as it is) and its report (LRA measured by the caller while writing)."""
    n, sr = chain.n, chain.sr
    measured = _stream_lufs(n, sr, chain.full)
    if not np.isfinite(measured):
        return None, LoudnessReport(measured, _peak_dbtp(n, sr, chain.full), None, 0.0, 0.0)
    total_gain_db, max_red = 0.0, 0.0
    ceiling = 10 ** ((ceiling_dbtp - 0.1) / 20)  # 0.1 dB margin for the filters, as the whole-array normalizer
    for _ in range(4):
        total_gain_db += target_lufs - measured
        out = _Normalized(chain, 10 ** (total_gain_db / 20), ceiling)
        measured, tp, _ = out.measure()
        max_red = max(max_red, -20 * np.log10(out.min_gain))
        if abs(measured - target_lufs) <= tolerance_lu:
            break
    if tp > ceiling_dbtp:  # inter-sample overs after the gain: a last static trim
        out.trim = np.float32(10 ** ((ceiling_dbtp - tp - 0.05) / 20))
        measured, tp, _ = out.measure()
    return out, LoudnessReport(measured, tp, None, total_gain_db, max_red)


def mix_files(lines: list[PlacedLine], *, original: str | os.PathLike | None, music_effects: str | os.PathLike | None,
              source_dialogue: str | os.PathLike | None, duck_spans_s: list[tuple[float, float]], outputs: dict[str, Path],
              target_lufs: float = -24.0, true_peak_ceiling_dbtp: float = -2.0, keep_nonverbal: bool = True) -> tuple[LoudnessReport, dict]:
    """:func:`lipdub.mixing.mix` from WAV stems to WAV stems, a block at a time (bounded memory).

    Args:
        lines: the fitted lines (float32 mono at the stems' rate).
        original / music_effects / source_dialogue: WAV paths as :func:`~lipdub.mixing.mix` takes the
            arrays (``original`` may be None when both others are given: only their length is needed).
        outputs: ``{"dialogue": path, "me": path, "mix": path}``: 48 kHz stereo 32-bit float WAVs,
            each written to a temporary name and renamed when complete.

    Returns:
        ``(loudness report, details)`` as :class:`~lipdub.mixing.MixResult` gives them.

    Raises:
        ConfigError: target or ceiling out of range.
    """
    mixing.check_targets(target_lufs, true_peak_ceiling_dbtp)
    stems = {k: _Stem(p) for k, p in (("original", original), ("me", music_effects), ("sd", source_dialogue)) if p is not None}
    try:
        return _mix(lines, stems, duck_spans_s, outputs, target_lufs, true_peak_ceiling_dbtp, keep_nonverbal)
    finally:
        for st in stems.values():
            st.close()


def _mix(lines, stems, duck_spans_s, outputs, target_lufs, ceiling_dbtp, keep_nonverbal) -> tuple[LoudnessReport, dict]:
    ref_stem = stems.get("me") or stems["original"]
    n, sr = ref_stem.n_samples, ref_stem.sample_rate_hz
    fade = max(1, int(mixing.FADE_S * sr))
    placed = []
    for line in lines:  # faded as mixing.place_lines fades them
        s = line.samples.astype(np.float32).copy()
        if len(s) > 2 * fade:
            ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
            s[:fade] *= ramp
            s[-fade:] *= ramp[::-1]
        placed.append((max(0, int(round(line.start_s * sr))), s))
    chain = _Chain(placed, n, sr, duck_spans_s, stems.get("me"), stems.get("original"), stems.get("sd"), keep_nonverbal)
    if "sd" in stems:
        ref = _stream_lufs(n, sr, stems["sd"].read)
    else:
        ref = _loudness_over_stem(stems["original"], duck_spans_s, sr)
    dub_l = _stream_lufs(n, sr, chain.dub_mono)
    dial_gain_db = (ref - dub_l) if np.isfinite(ref) and np.isfinite(dub_l) else 0.0
    chain.dial_gain = np.float32(10 ** (dial_gain_db / 20))
    out, report = _normalize(chain, target_lufs, ceiling_dbtp)
    post_gain = np.float32(10 ** (report.gain_db / 20))
    lra, kept = _write(chain, out, post_gain, outputs)
    report.loudness_range_lu = lra
    details = {"dialogue_gain_db": round(dial_gain_db, 2), "bed": "M&E stem" if chain.me is not None else "ducked original",
               "source_dialogue_kept_s": round(kept / sr, 3)}
    return report, details


def _loudness_over_stem(stem: _Stem, spans_s: list[tuple[float, float]], sr: int) -> float:
    """``mixing._loudness_over`` of a stem: the loudness of its samples over the spans, one after the
    other (the whole stem when they cover nothing), read a block at a time."""
    n = stem.n_samples
    parts = [slice(int(a * sr), int(b * sr)).indices(n)[:2] for a, b in spans_s]
    parts = [(a, b) for a, b in parts if b > a] or [(0, n)]
    total = sum(b - a for a, b in parts)
    if total < int(0.4 * sr):
        return float("-inf")
    m = meter.StreamingMeter(sr, stem.channels)
    for a, b in parts:
        for c in range(a, b, BLOCK_SAMPLES):
            m.add(stem.read(c, min(b, c + BLOCK_SAMPLES)))
    return m.integrated_lufs()


def _write(chain: _Chain, out: _Normalized | None, post_gain: np.float32, outputs: dict[str, Path]) -> tuple[float | None, float]:
    """Write the three stems a block at a time; ``(LRA of the mix or None, samples of kept source sound)``."""
    n, sr = chain.n, chain.sr
    lra = meter.StreamingMeter(sr, 2, loudness_range=True) if out is not None and n >= 3 * sr else None
    kept = 0
    tmps = {k: Path(p).with_name(f".{Path(p).name}.tmp") for k, p in outputs.items()}
    for t in tmps.values():
        t.parent.mkdir(parents=True, exist_ok=True)
    files = {k: sf.SoundFile(os.fspath(t), "w", sr, 2, subtype="FLOAT", format="WAV") for k, t in tmps.items()}
    try:
        for a, b in _blocks(n):
            d, keep = chain.dialogue(a, b)
            bed = chain.bed(a, b)
            mixed = out.range(a, b) if out is not None else np.add(d, bed, dtype=np.float32)
            if lra is not None:
                lra.add(mixed)
            if keep is not None:
                kept += int((keep > 0.5).sum())
            d *= post_gain
            files["dialogue"].write(d)
            files["me"].write(np.multiply(bed, post_gain, dtype=np.float32))
            files["mix"].write(mixed)
    finally:
        for f in files.values():
            f.close()
    for k, t in tmps.items():
        os.replace(t, outputs[k])
    return (lra.loudness_range_lu() if lra is not None else None), float(kept)
