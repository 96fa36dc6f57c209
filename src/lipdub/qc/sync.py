"""Lip-sync score from landmarks (DESIGN.md section 4), no neural weights.

The mouth opening of a face track (inner-lip gap / inter-ocular distance, per video frame) is compared
with the audio around each frame at lags of +-``max_lag_frames``. A single envelope correlation is noisy
on clips of a few seconds, so at each lag a per-clip linear model (ridge regression) maps log-mel bands
to mouth opening and is scored by its *cross-validated* correlation (contiguous folds, so neighbouring
frames do not leak; each fold centred before pooling): the curve peaks at the true audio-visual offset and moves by k frames when
the audio is shifted by k. A lag is a time shift of k median frame durations (the audio window is
taken k frame durations later), not of k frame indices, so variable-frame-rate video reads the same
offset as constant-rate video. Figures, in the spirit of SyncNet's AV offset / confidence (Chung &
Zisserman 2016):

* ``offset_frames``: the lag of the peak. Positive: the audio is late (the sound of frame t is heard at
  frame t + offset).
* ``peak_correlation``: the cross-validated correlation at the peak.
* ``confidence``: peak minus the median over all lags.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..contracts.faces import SKIP_NO_FACE

N_MELS = 40
HOP_S = 0.010


@dataclass
class SyncScore:
    """Landmark lip-sync score of one face track against one audio track."""

    offset_frames: int
    peak_correlation: float
    confidence: float
    lags: list[int] = field(default_factory=list)
    correlation_by_lag: list[float] = field(default_factory=list)
    n_frames: int = 0
    track: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


LOG_MEL_BLOCK_HOPS = 6000  # log-mel rows made at once (a minute at 10 ms): bounded memory for any length


def _log_mel(audio: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """float64 ``(n_hops, N_MELS)`` natural-log mel power, one row per ``HOP_S`` (librosa).

    The rows are those of one centred ``librosa.feature.melspectrogram`` over the whole signal, made
    :data:`LOG_MEL_BLOCK_HOPS` at a time: the signal is padded as librosa pads it (zeros, half a
    window each side) and each block is an uncentred spectrogram of exactly its rows' samples."""
    import librosa

    hop, n_fft = int(HOP_S * sample_rate_hz), int(0.025 * sample_rate_hz)
    y = np.pad(np.asarray(audio, dtype=np.float32), (n_fft // 2, n_fft // 2))
    n_hops = 1 + (len(y) - n_fft) // hop if len(y) >= n_fft else 0
    if n_hops < 1:  # shorter than a window: librosa's own handling
        mel = librosa.feature.melspectrogram(y=np.asarray(audio, np.float32), sr=sample_rate_hz, n_fft=n_fft, hop_length=hop,
                                             n_mels=N_MELS, fmin=60, fmax=min(7600, sample_rate_hz // 2 - 100))
        return np.log(mel + 1e-6).T.astype(np.float64)
    out = np.empty((n_hops, N_MELS))
    for a in range(0, n_hops, LOG_MEL_BLOCK_HOPS):
        b = min(n_hops, a + LOG_MEL_BLOCK_HOPS)
        mel = librosa.feature.melspectrogram(y=y[a * hop:(b - 1) * hop + n_fft], sr=sample_rate_hz, n_fft=n_fft, hop_length=hop,
                                             center=False, n_mels=N_MELS, fmin=60, fmax=min(7600, sample_rate_hz // 2 - 100))
        out[a:b] = np.log(mel + 1e-6).T
    return out


@dataclass(frozen=True)
class MelAudio:
    """A soundtrack's log-mel (:func:`_log_mel`), made once and scored against many tracks, lines
    and lags: float64 ``logmel`` ``(n_hops, N_MELS)`` (one row per ``HOP_S`` seconds) of 16 kHz audio."""

    logmel: np.ndarray
    sample_rate_hz: int

    @classmethod
    def of(cls, audio: np.ndarray, sample_rate_hz: int) -> MelAudio:
        """The log-mel of float mono ``audio`` at ``sample_rate_hz``."""
        return cls(_log_mel(audio, sample_rate_hz), int(sample_rate_hz))


def _mel_of(audio: np.ndarray | MelAudio, sample_rate_hz: int) -> np.ndarray:
    return audio.logmel if isinstance(audio, MelAudio) else _log_mel(audio, sample_rate_hz)


def _window_means(logmel: np.ndarray, starts_s: np.ndarray, span_s: float, context_s: float) -> np.ndarray:
    """Mean log-mel row over ``[start - context, start + span + context]`` for each start (seconds),
    standardized per band over the starts: float64 ``(len(starts_s), N_MELS)``."""
    cs = np.concatenate([np.zeros((1, logmel.shape[1])), np.cumsum(logmel, axis=0)])
    n_hops = len(logmel)
    a = np.clip((np.maximum(0.0, starts_s - context_s) / HOP_S).astype(np.int64), 0, max(0, n_hops - 1))
    b = np.clip(((starts_s + span_s + context_s) / HOP_S).astype(np.int64) + 1, a + 1, max(1, n_hops))
    out = (cs[b] - cs[a]) / (b - a)[:, None]
    out -= out.mean(axis=0, keepdims=True)
    out /= out.std(axis=0, keepdims=True) + 1e-6
    return out


def _lagged_features(logmel: np.ndarray, times_s: np.ndarray, lag_frames: int, context_s: float = 0.04) -> tuple[np.ndarray, np.ndarray]:
    """Features of the audio ``lag_frames`` nominal frames (median frame durations) after each frame,
    and bool ``(n,)`` where that audio window lies inside the soundtrack. A lag is a time shift, so on
    variable-frame-rate video a soundtrack delayed by k frame durations reads exactly lag k."""
    dur = float(np.median(np.diff(times_s))) if len(times_s) > 1 else 0.04
    starts = np.asarray(times_s, np.float64) + lag_frames * dur
    inside = (starts >= 0) & (starts + dur <= len(logmel) * HOP_S + 1e-9)
    return _window_means(logmel, starts, dur, context_s), inside


def cv_ridge_predictions(x: np.ndarray, y: np.ndarray, folds: int, alpha: float) -> np.ndarray:
    """Ridge predictions (float ``(n,)``) of ``y`` (float ``(n,)``) from ``x`` (float ``(n, F)``),
    each contiguous fold predicted by a model fitted on the others."""
    n = len(y)
    edges = np.linspace(0, n, folds + 1).astype(int)
    pred = np.empty(n)
    for a, b in zip(edges, edges[1:]):
        train = np.ones(n, dtype=bool)
        train[a:b] = False
        xt, yt = x[train], y[train]
        mx, my = xt.mean(axis=0), yt.mean()
        xc = xt - mx
        w = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ (yt - my))
        pred[a:b] = (x[a:b] - mx) @ w + my
    return pred


def _cv_correlation(x: np.ndarray, y: np.ndarray, folds: int, alpha: float) -> float:
    """Cross-validated correlation of ridge predictions over contiguous folds.

    Each held-out fold's predictions and targets are centred on their own means before the folds are
    pooled: leave-one-fold-out training shifts a fold's intercept against the fold's own mean, and
    pooling uncentred predictions would turn that shift into a spurious negative correlation.
    """
    pred = cv_ridge_predictions(x, y, folds, alpha)
    edges = np.linspace(0, len(y), folds + 1).astype(int)
    p = np.concatenate([pred[a:b] - pred[a:b].mean() for a, b in zip(edges, edges[1:])])
    t = np.concatenate([y[a:b] - y[a:b].mean() for a, b in zip(edges, edges[1:])])
    if np.std(p) < 1e-9 or np.std(t) < 1e-9:
        return 0.0
    return float(np.corrcoef(p, t)[0, 1])


def sync_score(
    mouth_opening: np.ndarray,
    audio: np.ndarray,
    sample_rate_hz: int,
    frame_times_s: np.ndarray,
    *,
    valid: np.ndarray | None = None,
    max_lag_frames: int = 15,
    folds: int = 5,
    alpha: float = 10.0,
    track: int | None = None,
) -> SyncScore:
    """Score how well ``mouth_opening`` (float ``(n_frames,)``) follows ``audio`` (float32 mono, or
    its :class:`MelAudio` when the same soundtrack is scored many times).

    Args:
        frame_times_s: presentation time of each of the ``n_frames`` frames (seconds; variable frame
            rates are handled: lag k is the audio k median frame durations later).
        valid: bool ``(n_frames,)``, frames where the mouth was measured (default all).
        max_lag_frames: lags scored, -max..+max (15 as in SyncNet's evaluation).

    Returns:
        :class:`SyncScore`. With fewer than 4 * folds valid frames at every lag, all figures are 0.
    """
    y_all = np.asarray(mouth_opening, dtype=np.float64)
    t = np.asarray(frame_times_s, dtype=np.float64)
    logmel = _mel_of(audio, sample_rate_hz)
    n = len(y_all)
    valid = np.ones(n, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    lags = list(range(-max_lag_frames, max_lag_frames + 1))
    corr = []
    for k in lags:
        # mouth at frame t against the audio k frame durations later
        feats, inside = _lagged_features(logmel, t, k)
        idx = np.flatnonzero(valid & inside)
        if len(idx) < 4 * folds:
            corr.append(0.0)
            continue
        corr.append(_cv_correlation(feats[idx], y_all[idx], folds, alpha))
    corr_arr = np.array(corr)
    best = int(np.argmax(corr_arr))
    return SyncScore(
        offset_frames=lags[best],
        peak_correlation=round(float(corr_arr[best]), 4),
        confidence=round(float(corr_arr[best] - np.median(corr_arr)), 4),
        lags=lags,
        correlation_by_lag=[round(float(c), 4) for c in corr_arr],
        n_frames=int(valid.sum()),
        track=track,
    )


def predicted_mouth(mouth_opening: np.ndarray, valid: np.ndarray, audio: np.ndarray, sample_rate_hz: int,
                    frame_times_s: np.ndarray, lag_frames: int, folds: int = 5, alpha: float = 10.0) -> np.ndarray:
    """The score's model at one lag, for plots: cross-validated ridge prediction of the mouth opening
    from the audio ``lag_frames`` frame durations later, float ``(n,)``; NaN where not predicted."""
    y = np.asarray(mouth_opening, dtype=np.float64)
    feats, inside = _lagged_features(_mel_of(audio, sample_rate_hz), np.asarray(frame_times_s, np.float64), lag_frames)
    pred = np.full(len(y), np.nan)
    idx = np.flatnonzero(np.asarray(valid, bool) & inside)
    if len(idx) >= 4 * folds:
        pred[idx] = cv_ridge_predictions(feats[idx], y[idx], folds, alpha)
    return pred


def track_sync_score(analysis, audio: np.ndarray, sample_rate_hz: int, frame_times_s: np.ndarray, track_id: int | None = None, **kw) -> SyncScore | None:
    """:func:`sync_score` of one track of a :class:`~lipdub.contracts.faces.FaceAnalysis` (default: the
    longest track) over the frames it covers; None when the video has no face track."""
    if not analysis.tracks:
        return None
    track = next((t for t in analysis.tracks if t.id == track_id), None) if track_id is not None else max(analysis.tracks, key=lambda t: len(t.frames))
    if track is None:
        return None
    times = np.asarray(frame_times_s)[track.start_frame:track.end_frame]
    valid = (track.skip & SKIP_NO_FACE) == 0
    return sync_score(track.mouth_opening, audio, sample_rate_hz, times, valid=valid, track=track.id, **kw)


