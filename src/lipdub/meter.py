"""A streaming ITU-R BS.1770-4 loudness meter: integrated loudness and loudness range of a signal fed
block by block, equal (to float rounding) to pyloudnorm's whole-array figures.

pyloudnorm copies the whole signal to float64 and filters it in one piece; for a long programme
(10 minutes of 48 kHz stereo is 460 MB in float64, and each filter stage makes another copy) that
dominates the memory of the mix and of the report. :class:`StreamingMeter` runs the same K-weighting
filters (pyloudnorm's coefficients, ``scipy.signal.lfilter`` with its state carried from block to
block) and adds each block's squares into pyloudnorm's gating blocks (same bounds, same gating), so
only one block of samples and one float per gating block are held, whatever the length.
"""

from __future__ import annotations

import numpy as np

#: Channel gains of BS.1770-4 (L, R, C, Ls, Rs), as pyloudnorm uses them.
CHANNEL_GAINS = (1.0, 1.0, 1.0, 1.41, 1.41)
ABSOLUTE_GATE_LUFS = -70.0
LRA_SILENCE_S = 1.5  # pyloudnorm appends this much silence before measuring the loudness range


class _Gating:
    """Mean squares of the K-weighted signal over pyloudnorm's gating blocks of ``block_s`` with
    ``overlap``: block ``j`` covers samples ``[int(T_g*(j*step)*rate), int(T_g*(j*step+1)*rate))``."""

    def __init__(self, sample_rate_hz: int, channels: int, block_s: float, overlap: float) -> None:
        self.rate, self.block_s, self.step = sample_rate_hz, block_s, 1.0 - overlap
        self.sums = np.zeros((channels, 0))

    def _bounds(self, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t, s, r = self.block_s, self.step, self.rate
        lo = (t * (j * s) * r).astype(np.int64)  # the same float expressions as pyloudnorm's int(...)
        hi = (t * (j * s + 1) * r).astype(np.int64)
        return lo, hi

    def add(self, sq: np.ndarray, at: int) -> None:
        """Add ``sq`` (float64 ``(channels, m)``: squared K-weighted samples from sample ``at``)."""
        m = sq.shape[1]
        if m == 0:
            return
        end = at + m
        # blocks that start before the end of this piece (their count only grows)
        n_blocks = int(np.floor(end / (self.block_s * self.step * self.rate))) + 2
        while n_blocks > 0 and self._bounds(np.array([n_blocks - 1], np.float64))[0][0] >= end:
            n_blocks -= 1
        if n_blocks > self.sums.shape[1]:
            self.sums = np.concatenate([self.sums, np.zeros((self.sums.shape[0], n_blocks - self.sums.shape[1]))], axis=1)
        j = np.arange(self.sums.shape[1], dtype=np.float64)
        lo, hi = self._bounds(j)
        hit = (hi > at) & (lo < end)
        if not hit.any():
            return
        cs = np.concatenate([np.zeros((sq.shape[0], 1)), np.cumsum(sq, axis=1)], axis=1)
        a = np.clip(lo[hit] - at, 0, m)
        b = np.clip(hi[hit] - at, 0, m)
        self.sums[:, hit] += cs[:, b] - cs[:, a]

    def blockwise(self, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
        """``(z, l)``: mean square per channel and block ``(channels, n_blocks)`` and block loudness
        ``(n_blocks,)`` LUFS, for a signal of ``n_samples`` (pyloudnorm's block count)."""
        t = n_samples / self.rate
        n_blocks = int(np.round((t - self.block_s) / (self.block_s * self.step))) + 1
        z = np.zeros((self.sums.shape[0], max(n_blocks, 0)))
        k = min(n_blocks, self.sums.shape[1])
        z[:, :k] = self.sums[:, :k] / (self.block_s * self.rate)
        g = np.array(CHANNEL_GAINS[: z.shape[0]])[:, None]
        with np.errstate(divide="ignore"):
            loud = -0.691 + 10.0 * np.log10((g * z).sum(axis=0))
        return z, loud


def _gated_lufs(z: np.ndarray, loud: np.ndarray) -> float:
    """pyloudnorm's two-stage gating (absolute -70 LUFS, relative -10 LU) of blockwise figures."""
    g = np.array(CHANNEL_GAINS[: z.shape[0]])
    with np.errstate(divide="ignore", invalid="ignore"):
        keep = loud >= ABSOLUTE_GATE_LUFS
        gamma_r = -0.691 + 10.0 * np.log10(np.sum(g * z[:, keep].mean(axis=1))) - 10.0
        keep = (loud > gamma_r) & (loud > ABSOLUTE_GATE_LUFS)
        avg = np.nan_to_num(z[:, keep].mean(axis=1))
        return float(-0.691 + 10.0 * np.log10(np.sum(g * avg)))


class StreamingMeter:
    """BS.1770-4 integrated loudness (and, with ``loudness_range=True``, EBU Tech 3342 LRA as
    pyloudnorm computes it) of a signal given block by block.

    Args:
        sample_rate_hz: the signal's rate.
        channels: its channel count (1 to 5).
        loudness_range: also keep pyloudnorm's 3 s / 97 % overlap blocks for :meth:`loudness_range_lu`.

    Feed it with :meth:`add` (float ``(m,)`` or ``(m, channels)`` blocks in order, any sizes).
    """

    def __init__(self, sample_rate_hz: int, channels: int, loudness_range: bool = False) -> None:
        import pyloudnorm

        self.rate, self.channels, self.n_samples = int(sample_rate_hz), int(channels), 0
        self._filters = list(pyloudnorm.Meter(self.rate)._filters.values())
        self._state: list[list[np.ndarray] | None] = [[None] * self.channels for _ in self._filters]
        self._integrated = _Gating(self.rate, self.channels, 0.4, 0.75)
        self._range = _Gating(self.rate, self.channels, 3.0, 0.97) if loudness_range else None

    def _weight(self, x: np.ndarray) -> np.ndarray:
        """K-weighted float64 ``(channels, m)`` of ``x`` ``(m, channels)``, the filter state carried."""
        from scipy.signal import lfilter, lfilter_zi

        y = np.array(x, dtype=np.float64).T
        for f, (filt, state) in enumerate(zip(self._filters, self._state)):
            b, a = filt.b, filt.a
            for ch in range(self.channels):
                zi = state[ch] if state[ch] is not None else np.zeros(len(lfilter_zi(b, a)))
                y[ch], state[ch] = lfilter(b, a, y[ch], zi=zi)
                y[ch] *= filt.passband_gain
        return y

    def add(self, x: np.ndarray) -> None:
        """Feed the next ``x``: float ``(m,)`` (mono) or ``(m, channels)`` samples in [-1, 1]."""
        x = np.asarray(x)
        x = x.reshape(-1, 1) if x.ndim == 1 else x
        sq = np.square(self._weight(x))
        self._integrated.add(sq, self.n_samples)
        if self._range is not None:
            self._range.add(sq, self.n_samples)
        self.n_samples += x.shape[0]

    def integrated_lufs(self) -> float:
        """Integrated loudness, LUFS, of all samples fed (-inf for silence or under 0.4 s)."""
        if self.n_samples < int(0.4 * self.rate):
            return float("-inf")
        return _gated_lufs(*self._integrated.blockwise(self.n_samples))

    def loudness_range_lu(self) -> float | None:
        """Loudness range, LU, as pyloudnorm's ``Meter.loudness_range`` (1.5 s of silence appended;
        None under 3 s, NaN when no block passes the gates). Call it last: it feeds the silence."""
        if self._range is None:
            raise ValueError("StreamingMeter(loudness_range=True) measures the loudness range")
        n = self.n_samples
        if n < 3 * self.rate:
            return None
        silence = int(LRA_SILENCE_S * self.rate)
        sq = np.square(self._weight(np.zeros((silence, self.channels))))
        self._range.add(sq, n)
        _, loud = self._range.blockwise(n + silence)
        stl = loud[loud >= ABSOLUTE_GATE_LUFS]
        if not len(stl):
            return float("nan")  # pyloudnorm's answer for a signal too quiet to have a range
        integrated = 10 * np.log10(np.sum(np.power(10, stl / 10)) / len(stl))
        stl = stl[stl >= integrated - 20]
        if not len(stl):
            return float("nan")
        return float(np.percentile(stl, 95) - np.percentile(stl, 10))


def measure(x: np.ndarray, sample_rate_hz: int, block_samples: int = 1 << 18, loudness_range: bool = False) -> StreamingMeter:
    """A :class:`StreamingMeter` fed with ``x`` (float ``(n,)`` or ``(n, channels)``) in blocks of
    ``block_samples``: the float64 work arrays are one block long, never the whole signal."""
    ch = 1 if x.ndim == 1 else x.shape[1]
    meter = StreamingMeter(sample_rate_hz, ch, loudness_range=loudness_range)
    for a in range(0, len(x), block_samples):
        meter.add(x[a:a + block_samples])
    return meter
