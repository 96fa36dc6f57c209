"""Step 4 of DESIGN.md section 3 on the acoustic path (the fallback when the dub has no phoneme timings),
and the pause detection both paths share.

The target is the actor's audio-to-mouth ridge on the dub's audio features (when the source mouth
follows its soundtrack) or the speaker-independent energy mapping (:func:`energy_trajectory`),
smoothed by a Gaussian in time (sigma 30 ms, in seconds so variable frame rates are handled), then
*closed* (the mean descriptor of the library's most closed frames) where the dub is silent for at least
100 ms and on bilabial phonemes (p, b, m) when phoneme timings are given. Closures are imposed after
smoothing so a 1-frame /p/ is not smoothed away.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...lipsync.visemes import as_timings, is_bilabial
from .actor_model import TrackMouthModel, uses_actor_model
from .features import FrameAudio, audio_features_per_frame


def bilabial_frames(frame_times_s: np.ndarray, phonemes) -> np.ndarray:
    """bool ``(N,)``: frames (presentation times ``frame_times_s``, seconds) inside a bilabial phoneme
    (:func:`lipdub.lipsync.visemes.is_bilabial`); a bilabial shorter than the frame spacing marks the
    frame nearest to its middle."""
    t = np.asarray(frame_times_s, np.float64)
    out = np.zeros(len(t), bool)
    if not phonemes or not len(t):
        return out
    for start_s, end_s, ph in as_timings(phonemes):
        if not is_bilabial(str(ph)):
            continue
        inside = (t >= start_s) & (t < end_s)
        if inside.any():
            out |= inside
        else:
            mid = 0.5 * (start_s + end_s)
            i = int(np.argmin(np.abs(t - mid)))
            if abs(t[i] - mid) <= max(0.5 * (end_s - start_s), 0.0) + 0.5 * float(np.median(np.diff(t)) if len(t) > 1 else 0.04):
                out[i] = True
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of the runs of True in a bool array."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return list(zip(d[::2], d[1::2]))


def _contiguous_segments(frames: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) row ranges of ``frames`` (sorted ints) where frames are consecutive."""
    if len(frames) == 0:
        return []
    cuts = np.flatnonzero(np.diff(frames) != 1) + 1
    edges = np.concatenate([[0], cuts, [len(frames)]])
    return list(zip(edges[:-1], edges[1:]))


def smooth_in_time(values: np.ndarray, times_s: np.ndarray, frames: np.ndarray, sigma_s: float) -> np.ndarray:
    """Gaussian smoothing (standard deviation ``sigma_s`` seconds) of float ``(N, D)`` rows at
    ``times_s`` (seconds), within runs of consecutive ``frames`` only (a gap is not smoothed across)."""
    v = np.asarray(values, np.float64)
    if sigma_s <= 0 or len(v) < 2:
        return v.copy()
    out = np.empty_like(v)
    t = np.asarray(times_s, np.float64)
    for a, b in _contiguous_segments(np.asarray(frames)):
        tt = t[a:b]
        w = np.exp(-0.5 * ((tt[:, None] - tt[None, :]) / sigma_s) ** 2)
        w[np.abs(tt[:, None] - tt[None, :]) > 3 * sigma_s] = 0.0
        out[a:b] = (w @ v[a:b]) / w.sum(axis=1, keepdims=True)
    return out


@dataclass
class TargetTrajectory:
    """Planned mouth for the output frames.

    Attributes:
        target: float32 ``(N, D)`` mouth descriptors.
        predicted: float32 ``(N, D)`` raw model output (before smoothing and closures).
        silent: bool ``(N,)`` frames closed because the dub is silent.
        bilabial: bool ``(N,)`` frames closed for a p/b/m.
        audio: the dub's :class:`FrameAudio` at the output frames.
    """

    target: np.ndarray
    predicted: np.ndarray
    silent: np.ndarray
    bilabial: np.ndarray
    audio: FrameAudio


def energy_trajectory(model: TrackMouthModel, fa: FrameAudio) -> np.ndarray:
    """Speaker-independent target: louder speech opens the mouth wider.

    The dub's level on its speech frames is turned into a quantile (its empirical CDF over the
    utterance), which picks the same quantile of the actor's own mouth openings (the first PCA
    parameter over the library); the full descriptor is the mean of the ``energy_neighbours`` library
    frames nearest to that opening, so the shape stays one the actor makes. Jaw/mouth opening tracking
    the speech envelope is the classic audio-visual correlation (e.g. Chandrasekaran et al., "The
    natural statistics of audiovisual speech", PLoS Comput Biol 2009).

    Returns:
        float32 ``(N, D)`` descriptors (silent frames get the closed descriptor).
    """
    opt = model.options
    lib = model.descriptors[model.library_rows].astype(np.float64)
    order = np.argsort(lib[:, 0])
    lib_open = lib[order, 0]
    out = np.repeat(model.closed[None, :].astype(np.float64), len(fa.energy_db), axis=0)
    sp = np.flatnonzero(fa.speech)
    if len(sp) == 0 or len(lib) == 0:
        return out.astype(np.float32)
    e = fa.energy_db[sp].astype(np.float64)
    q = (np.argsort(np.argsort(e)) + 0.5) / len(e)
    want = np.quantile(lib_open, q)
    k = max(1, min(opt.energy_neighbours, len(lib)))
    pos = np.clip(np.searchsorted(lib_open, want), 0, len(lib))
    for i, (row, p) in enumerate(zip(sp, pos)):
        a = int(np.clip(p - k // 2, 0, max(0, len(lib) - k)))
        out[row] = lib[order[a:a + k]].mean(axis=0)
    return out.astype(np.float32)


def silent_frames(fa: FrameAudio, times_s: np.ndarray, min_silence_s: float) -> np.ndarray:
    """bool ``(N,)``: frames in a run of non-speech (``fa.speech`` False) lasting at least
    ``min_silence_s`` (run length counted as last - first presentation time + one frame)."""
    t = np.asarray(times_s, np.float64)
    frame_s = float(np.median(np.diff(t))) if len(t) > 1 else 0.04
    silent = np.zeros(len(t), bool)
    for a, b in _runs(~fa.speech):
        if t[b - 1] - t[a] + frame_s >= min_silence_s:
            silent[a:b] = True
    return silent


def acoustic_prediction(model: TrackMouthModel, fa: FrameAudio) -> np.ndarray:
    """float ``(N, D)``: the actor's ridge on the audio features when the source mouth follows its
    soundtrack (:func:`~lipdub.backends.lipsync.actor_model.uses_actor_model`), else the energy mapping."""
    if uses_actor_model(model):
        return model.regression.predict(fa.features)
    return energy_trajectory(model, fa)


def target_trajectory(
    model: TrackMouthModel,
    dub_audio: np.ndarray,
    sample_rate_hz: int,
    frames: np.ndarray,
    times_s: np.ndarray,
    phonemes=None,
) -> TargetTrajectory:
    """Step 4 on the acoustic path: the actor's model on the dub audio at output ``frames`` (int
    ``(N,)``) shown at ``times_s`` (float64 ``(N,)`` seconds); smoothed; closed at silences of at least
    ``min_silence_s`` and on bilabials from ``phonemes`` (``(start_s, end_s, phoneme)`` or
    PhonemeTiming, seconds on the output timeline)."""
    opt = model.options
    fa = audio_features_per_frame(dub_audio, sample_rate_hz, times_s)
    pred = acoustic_prediction(model, fa)
    target = smooth_in_time(pred, times_s, frames, opt.smooth_sigma_s)
    silent = silent_frames(fa, times_s, opt.min_silence_s)
    bil = bilabial_frames(times_s, phonemes)
    target[silent | bil] = model.closed
    return TargetTrajectory(target=target.astype(np.float32), predicted=np.asarray(pred, np.float32), silent=silent,
                            bilabial=bil, audio=fa)
