"""Audio figures of the report: loudness (ITU-R BS.1770-4 / EBU R128), true peak, loudness range,
clipping, and the short-term loudness series for the plot.

Integrated loudness and LRA come from pyloudnorm (BS.1770-4 K-weighting and gating; LRA as EBU Tech
3342), true peak from 4x polyphase oversampling (BS.1770-4 Annex 2), through the same helpers the mix
stage uses (:mod:`lipdub.mixing`), so the report measures exactly what the mix aimed at.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .. import meter
from .. import mixing as mix_stage
from ..audio import ArraySource

CLIP_LEVEL = 0.999  # |sample| at or above this (full scale 1.0) counts as clipped
SHORT_TERM_S = 3.0  # EBU Tech 3341 short-term window
SHORT_TERM_HOP_S = 0.5
CLIP_BLOCK_SAMPLES = 1 << 20  # clipping is counted block by block
METER_BLOCK_SAMPLES = 1 << 18  # the loudness meter's blocks (those of lipdub.meter.measure)


@dataclass
class AudioFigures:
    """Loudness figures of one soundtrack.

    Attributes:
        integrated_lufs: integrated loudness in LUFS (-inf for silence).
        true_peak_dbtp: true peak in dBTP.
        loudness_range_lu: LRA in LU (None when shorter than 3 s).
        clipped_samples: samples (any channel) with ``|x| >= 0.999``.
        clipped_share: ``clipped_samples`` / all samples over all channels.
        short_term_times_s / short_term_lufs: short-term loudness (3 s window, 0.5 s hop) for the plot;
            the time is the window's end; -inf windows are given as None.
    """

    integrated_lufs: float
    true_peak_dbtp: float
    loudness_range_lu: float | None
    clipped_samples: int
    clipped_share: float
    sample_rate_hz: int
    duration_s: float
    short_term_times_s: list[float] = field(default_factory=list)
    short_term_lufs: list[float | None] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def short_term_loudness(x, sample_rate_hz: int, window_s: float = SHORT_TERM_S, hop_s: float = SHORT_TERM_HOP_S) -> tuple[np.ndarray, np.ndarray]:
    """Short-term loudness (ungated BS.1770 loudness of a sliding window), float ``(n,)`` LUFS
    (-inf for silent windows) at window end times ``(n,)`` seconds. Clips shorter than the window
    give one value over the whole clip. ``x``: float ``(n,)`` / ``(n, channels)`` samples or a block
    source of them (:class:`lipdub.audio.ArraySource`, :class:`lipdub.audio.AudioFile`): one window
    is read (and made float64) at a time."""
    import pyloudnorm

    src = x if hasattr(x, "read") else ArraySource(x)
    meter = pyloudnorm.Meter(sample_rate_hz, block_size=0.4)
    n, w, h = src.n_samples, int(window_s * sample_rate_hz), int(hop_s * sample_rate_hz)
    if n < w:
        w = n
    ends = list(range(w, n + 1, h)) or [n]
    mono = not hasattr(x, "read") and np.ndim(x) == 1
    times, values = [], []
    for e in ends:
        seg = np.asarray(src.read(e - w, e), dtype=np.float64)  # one window in float64, never the whole signal
        seg = seg[:, 0] if mono else seg
        # ungated loudness: one block covering the whole window (BS.1770 mean square, K-weighted)
        meter.block_size = len(seg) / sample_rate_hz
        with np.errstate(divide="ignore"):
            try:
                v = float(meter.integrated_loudness(seg))
            except ValueError:
                v = float("-inf")
        times.append(e / sample_rate_hz)
        values.append(v)
    return np.array(times), np.array(values)


def audio_figures(x, sample_rate_hz: int) -> AudioFigures:
    """Measure ``x`` (float ``(n,)`` or ``(n, channels)`` in [-1, 1], or a block source of such
    samples: :class:`lipdub.audio.ArraySource`, :class:`lipdub.audio.AudioFile`) at
    ``sample_rate_hz``; every figure is made block by block (:mod:`lipdub.meter`), without a
    whole-length copy of ``x``: a source is never read whole."""
    src = x if hasattr(x, "read") else ArraySource(x)
    n = src.n_samples
    clipped = sum(int(np.count_nonzero(np.abs(src.read(a, min(n, a + CLIP_BLOCK_SAMPLES))) >= CLIP_LEVEL))
                  for a in range(0, n, CLIP_BLOCK_SAMPLES))
    times, st = short_term_loudness(x, sample_rate_hz)
    # integrated loudness (and LRA from 3 s) from one pass of the meter, in meter.measure's blocks
    m = meter.StreamingMeter(sample_rate_hz, src.channels, loudness_range=n >= 3 * sample_rate_hz)
    for a in range(0, n, METER_BLOCK_SAMPLES):
        m.add(src.read(a, min(n, a + METER_BLOCK_SAMPLES)))
    integrated = m.integrated_lufs()
    lra = m.loudness_range_lu() if n >= 3 * sample_rate_hz else None
    return AudioFigures(
        integrated_lufs=round(integrated, 2),
        true_peak_dbtp=round(mix_stage.true_peak_dbtp(x, sample_rate_hz), 2),
        loudness_range_lu=None if lra is None else round(lra, 2),
        clipped_samples=clipped,
        clipped_share=clipped / max(1, n * src.channels),
        sample_rate_hz=int(sample_rate_hz),
        duration_s=round(n / sample_rate_hz, 3),
        short_term_times_s=[round(float(t), 3) for t in times],
        short_term_lufs=[round(float(v), 2) if np.isfinite(v) else None for v in st],
    )
