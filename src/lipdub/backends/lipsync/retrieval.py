"""The embedded lip-sync backend ``retrieval`` (DESIGN.md section 3): audio-driven mouth retrieval from
the actor's own footage, in the spirit of Video Rewrite (Bregler, Covell, Slaney, "Video Rewrite:
Driving Visual Speech with Audio", SIGGRAPH 1997). No weights: everything is fitted on the source clip.

For one face track:

1. **Mouth descriptor** of every frame (:func:`lipdub.backends.lipsync.features.mouth_descriptors`): aligned
   lip and jaw landmarks reduced by PCA (component 0 = opening), in inter-ocular units.
2. **Audio features** per video frame (:func:`lipdub.backends.lipsync.features.audio_features_per_frame`):
   stacked log-mel over +-100 ms, normalized per utterance.
3. **Audio-to-mouth model** of this actor: ridge regression (Hoerl and Kennard 1970) from the source
   audio features to the descriptors of the same frames (usable frames only). The ridge strength is
   chosen by *blocked* k-fold cross-validation (contiguous folds, so neighbouring, nearly identical
   frames do not leak between training and test; Bergmeir and Benitez 2012), and the held-out R^2
   reported is nested (the strength is chosen inside each outer training part). The model drives the
   mouth only when the source mouth follows its own soundtrack (mouth opening / speech envelope
   correlation, :attr:`RetrievalOptions.min_av_correlation`); otherwise a speaker-independent mapping
   from the dub's level to the actor's own range of openings does (:func:`energy_trajectory`).
4. **Target trajectory** for the dubbed speech: the model on the dub audio features, smoothed by a
   Gaussian in time (sigma 30 ms, in seconds so variable frame rates are handled), then *closed* (the
   mean descriptor of the library's most closed frames) where the dub is silent for at least 100 ms
   and on bilabial phonemes (p, b, m) when the TTS gave phoneme timings. Closures are imposed after
   smoothing so a 1-frame /p/ is not smoothed away.
5. **Retrieval**: per output frame, candidates are the K library frames of lowest local cost (mouth
   distance to the target + head-pose distance to the frame being replaced) plus the successors of the
   previous frame's K best states; a Viterbi pass (Viterbi 1967; as in unit-selection synthesis, Hunt
   and Black 1996) minimizes local costs + concatenation costs: 0 for consecutive source frames
   (j -> j+1), otherwise a jump cost plus the mouth and pose mismatch between the natural successor of j
   and the new frame, and a growing cost for holding the same frame.

The plan's ``source_frames`` are *video frame indices* of the track (``track.frames`` values). Frames of
``frames`` where the track is absent or flagged (``skip != 0``) are left out of the plan, so the
compositor leaves them untouched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ...contracts.faces import FaceAnalysis, FaceTrack
from ...contracts.lipsync import LipsyncPlan
from ...errors import ConfigError, InputError, StageFailed
from ...faces.speakers import lagged_correlation, speech_envelope_per_frame
from .features import (
    LIP_POINTS,
    FrameAudio,
    MouthPCA,
    align_landmarks,
    audio_features_per_frame,
    mouth_shapes,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------------

@dataclass
class RetrievalOptions:
    """Options of the ``retrieval`` backend (defaults are general, not fitted to a clip).

    Attributes:
        n_components: PCA mouth parameters.
        alphas: ridge strengths tried (inputs are standardized, so these are in units of frames).
        n_folds: blocked cross-validation folds.
        closed_quantile: the closed mouth is the mean descriptor of the library frames whose
            ``mouth_opening`` is at or below this quantile.
        smooth_sigma_s: Gaussian smoothing of the target trajectory, seconds.
        min_silence_s: a dub pause at least this long closes the mouth.
        top_k: candidates per output frame by local cost (plus as many successors of the previous
            frame's candidates).
        pose_scale_deg: head-pose difference counted as 1 unit of cost (yaw and pitch; roll weighted
            ``roll_weight``, since in-plane rotation is undone by the compositor's alignment).
        pose_weight: weight of the pose cost against the mouth cost.
        jump_cost: cost of a cut to a non-consecutive source frame.
        join_weight: weight of the mouth/pose mismatch at a cut (successor of j vs the new frame).
        hold_cost: cost of showing the same source frame again, multiplied by how long it was held.
        min_av_correlation: the actor's audio-to-mouth model is used only when the source shows
            that the soundtrack is this face's own speech: the track's mouth opening correlates with
            the source speech envelope (Pearson r at the best lag within +-2 frames, as the
            active-speaker match of :mod:`lipdub.faces.speakers`, whose off-screen threshold this
            is) at least this much. Below it (a voice-over, a soundtrack that is not the visible
            person's) the target comes from the speaker-independent energy mapping of
            :func:`energy_trajectory`, and the plan's details say so. The held-out R^2 is reported
            but not used to decide: with the few hundred frames of a short clip, blocked
            cross-validation of a ~100-feature regression is too noisy to tell a usable model from a
            useless one (on the test clips it is negative both for clips whose model predicts the
            mouth on unseen frames and for clips whose soundtrack is someone else's).
        energy_neighbours: library frames averaged per target in the energy mapping.
    """

    n_components: int = 6
    alphas: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)
    n_folds: int = 5
    closed_quantile: float = 0.10
    smooth_sigma_s: float = 0.030
    min_silence_s: float = 0.100
    top_k: int = 20
    pose_scale_deg: float = 10.0
    roll_weight: float = 0.1
    pose_weight: float = 1.0
    jump_cost: float = 0.3
    join_weight: float = 0.5
    hold_cost: float = 0.2
    min_av_correlation: float = 0.15
    energy_neighbours: int = 5

    def validate(self) -> None:
        """Raises ConfigError on a value out of range."""
        if self.n_components < 1 or self.top_k < 1 or self.n_folds < 2:
            raise ConfigError("retrieval: n_components and top_k must be >= 1 and n_folds >= 2", "use the defaults")
        if not 0 < self.closed_quantile < 1:
            raise ConfigError(f"retrieval: closed_quantile {self.closed_quantile} must be in (0, 1)", "use 0.1")
        if min(self.smooth_sigma_s, self.min_silence_s, self.pose_scale_deg, self.jump_cost, self.join_weight,
               self.hold_cost, self.pose_weight, self.roll_weight) < 0 or self.pose_scale_deg == 0:
            raise ConfigError("retrieval: weights, scales and durations must be >= 0 (pose_scale_deg > 0)", "use the defaults")
        if not self.alphas or min(self.alphas) <= 0:
            raise ConfigError("retrieval: ridge alphas must be > 0", "use the defaults")


# --------------------------------------------------------------------------------------------------
# Ridge regression with blocked cross-validation
# --------------------------------------------------------------------------------------------------

@dataclass
class RidgeModel:
    """Linear map ``y = (x - x_mean) @ weights + y_mean``; float64 arrays ``(F,)``, ``(F, D)``, ``(D,)``."""

    x_mean: np.ndarray
    weights: np.ndarray
    y_mean: np.ndarray
    alpha: float

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, alpha: float) -> "RidgeModel":
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64)
        xm, ym = x.mean(axis=0), y.mean(axis=0)
        xc = x - xm
        w = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ (y - ym))
        return cls(xm, w, ym, float(alpha))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float64) - self.x_mean) @ self.weights + self.y_mean


def r2_score(y: np.ndarray, pred: np.ndarray) -> float:
    """Variance-weighted coefficient of determination over all outputs: 1 - SSE / SST (float)."""
    y = np.asarray(y, np.float64)
    sst = float(((y - y.mean(axis=0)) ** 2).sum())
    return 1.0 - float(((y - pred) ** 2).sum()) / max(sst, 1e-30)


def _blocked_predictions(x: np.ndarray, y: np.ndarray, alpha: float, n_folds: int) -> np.ndarray:
    """Out-of-fold predictions with ``n_folds`` contiguous folds (rows in time order)."""
    pred = np.empty_like(y, dtype=np.float64)
    n = len(x)
    for fold in np.array_split(np.arange(n), n_folds):
        train = np.ones(n, bool)
        train[fold] = False
        pred[fold] = RidgeModel.fit(x[train], y[train], alpha).predict(x[fold])
    return pred


def _choose_alpha(x: np.ndarray, y: np.ndarray, alphas, n_folds: int) -> tuple[float, float]:
    scores = [r2_score(y, _blocked_predictions(x, y, a, n_folds)) for a in alphas]
    i = int(np.argmax(scores))
    return float(alphas[i]), float(scores[i])


def fit_ridge_blocked_cv(x: np.ndarray, y: np.ndarray, alphas=RetrievalOptions.alphas, n_folds: int = 5) -> tuple[RidgeModel, float]:
    """Ridge from ``x`` float ``(T, F)`` to ``y`` float ``(T, D)`` (rows in time order).

    The strength is chosen among ``alphas`` by blocked k-fold CV on all rows; the returned held-out
    R^2 is *nested*: each contiguous outer fold is predicted by a model whose strength was chosen by
    blocked CV inside the remaining rows, so it is not inflated by the choice.

    Returns:
        ``(model fitted on all rows, nested held-out R^2)``.

    Raises:
        InputError: fewer than ``2 * n_folds`` rows.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    n = len(x)
    if n < 2 * n_folds:
        raise InputError(f"{n} frames are too few to fit the audio-to-mouth model", f"the track needs at least {2 * n_folds} usable frames")
    pred = np.empty_like(y)
    for fold in np.array_split(np.arange(n), n_folds):
        train = np.ones(n, bool)
        train[fold] = False
        inner_folds = max(2, min(n_folds - 1, int(train.sum()) // 4))
        a, _ = _choose_alpha(x[train], y[train], alphas, inner_folds)
        pred[fold] = RidgeModel.fit(x[train], y[train], a).predict(x[fold])
    r2 = r2_score(y, pred)
    alpha, _ = _choose_alpha(x, y, alphas, n_folds)
    return RidgeModel.fit(x, y, alpha), r2


# --------------------------------------------------------------------------------------------------
# Per-track model (steps 1-3)
# --------------------------------------------------------------------------------------------------

@dataclass
class TrackMouthModel:
    """Everything fitted on one track's source footage.

    Attributes:
        track: the face track.
        aligned: float64 ``(T, 478, 3)`` landmarks in the canonical face frame (inter-ocular units).
        descriptors: float32 ``(T, D)`` mouth descriptor of every track row.
        pca: the mouth PCA (fitted on ``fit_rows``).
        usable: bool ``(T,)`` rows with ``skip == 0``.
        fit_rows: bool ``(T,)`` rows the PCA and the audio model were fitted on.
        library_rows: int64 ``(L,)`` track rows that may be shown (usable, in ``fit_rows``).
        regression: the audio-to-mouth ridge model.
        r2_heldout: nested blocked-CV R^2 of the regression (float; may be <= 0 on a hard clip).
        av_correlation: lagged Pearson r of the fit rows' mouth opening with the source speech
            envelope (decides between the actor model and the energy mapping).
        closed: float32 ``(D,)`` descriptor of a closed mouth.
        source_audio: :class:`FrameAudio` of the track rows.
    """

    track: FaceTrack
    aligned: np.ndarray
    descriptors: np.ndarray
    pca: MouthPCA
    usable: np.ndarray
    fit_rows: np.ndarray
    library_rows: np.ndarray
    regression: RidgeModel
    r2_heldout: float
    av_correlation: float
    closed: np.ndarray
    source_audio: FrameAudio
    options: RetrievalOptions = field(default_factory=RetrievalOptions)


def fit_track_model(
    track: FaceTrack,
    frame_times_s: np.ndarray,
    source_audio: np.ndarray,
    sample_rate_hz: int,
    options: RetrievalOptions | None = None,
    fit_rows: np.ndarray | None = None,
) -> TrackMouthModel:
    """Steps 1-3 of DESIGN.md section 3 on one track.

    Args:
        track: the face track (smoothed ``landmarks`` are used).
        frame_times_s: float64 ``(frame_count,)`` presentation time of every video frame.
        source_audio: float32 mono source dialogue at ``sample_rate_hz``.
        fit_rows: bool ``(T,)`` restrict fitting and the library to these rows (self-reconstruction);
            default all rows. Only rows with ``skip == 0`` are ever used.

    Raises:
        InputError: frame times do not cover the track; too few usable frames.
    """
    opt = options or RetrievalOptions()
    opt.validate()
    t_all = np.asarray(frame_times_s, np.float64)
    if track.end_frame > len(t_all):
        raise InputError(f"frame times cover {len(t_all)} frames but track {track.id} ends at frame {track.end_frame}",
                         "pass the frame times of the analysed video (lipdub.pipeline.video_frame_times)")
    usable = np.asarray(track.skip) == 0
    rows = usable.copy() if fit_rows is None else usable & np.asarray(fit_rows, bool)
    if rows.sum() < 2 * opt.n_folds:
        raise InputError(f"track {track.id} has {int(rows.sum())} usable frames, too few for the retrieval lip-sync",
                         f"the retrieval backend needs at least {2 * opt.n_folds} frames with a measured, frontal face")
    aligned = align_landmarks(track.landmarks, usable)
    shapes = mouth_shapes(aligned)
    pca = MouthPCA.fit(shapes[rows], opt.n_components, np.asarray(track.mouth_opening)[rows])
    desc = pca.transform(shapes)
    audio = audio_features_per_frame(source_audio, sample_rate_hz, t_all[track.frames])
    fit_idx = np.flatnonzero(rows)
    regression, r2 = fit_ridge_blocked_cv(audio.features[fit_idx], desc[fit_idx], opt.alphas, opt.n_folds)
    opening = np.asarray(track.mouth_opening, np.float64)[fit_idx]
    closed_sel = fit_idx[opening <= np.quantile(opening, opt.closed_quantile)]
    closed = desc[closed_sel].mean(axis=0)
    env = speech_envelope_per_frame(source_audio, sample_rate_hz, t_all[track.frames])
    av_r, _lag = lagged_correlation(opening, env[fit_idx].astype(np.float64), max_lag=2)
    log.info("track %d: audio-to-mouth ridge alpha %.3g, held-out R^2 %.3f on %d frames; mouth/speech r %.3f; PCA explains %s",
             track.id, regression.alpha, r2, len(fit_idx), av_r, np.round(pca.explained_ratio, 3).tolist())
    return TrackMouthModel(track=track, aligned=aligned, descriptors=desc, pca=pca, usable=usable, fit_rows=rows,
                           library_rows=fit_idx.astype(np.int64), regression=regression, r2_heldout=r2,
                           av_correlation=float(av_r), closed=closed.astype(np.float32), source_audio=audio, options=opt)


def uses_actor_model(model: TrackMouthModel) -> bool:
    """True when the target comes from the actor's ridge model (the source soundtrack is this face's
    speech, see :attr:`RetrievalOptions.min_av_correlation`), False for the energy mapping."""
    return model.av_correlation >= model.options.min_av_correlation


# --------------------------------------------------------------------------------------------------
# Step 4: target trajectory
# --------------------------------------------------------------------------------------------------

_PHONE_MODIFIERS = set("ˈˌːˑʰʲʷ̩̥̃ʼ'\":0123456789")


def is_bilabial(phoneme: str) -> bool:
    """True for a bilabial stop or nasal: espeak IPA ``p``, ``b``, ``m`` (with stress marks, length,
    aspiration or palatalization: ``pʰ``, ``mʲ``, ``ˈb``), and ARPAbet ``P``, ``B``, ``M``, ``EM``."""
    p = phoneme.strip()
    if p.upper() in {"P", "B", "M", "EM"}:
        return True
    core = "".join(ch for ch in p if ch not in _PHONE_MODIFIERS)
    return core in {"p", "b", "m", "pp", "bb", "mm"}


def bilabial_frames(frame_times_s: np.ndarray, phonemes: list[tuple[float, float, str]] | None) -> np.ndarray:
    """bool ``(N,)``: frames (presentation times ``frame_times_s``, seconds) inside a bilabial phoneme;
    a bilabial shorter than the frame spacing marks the frame nearest to its middle."""
    t = np.asarray(frame_times_s, np.float64)
    out = np.zeros(len(t), bool)
    if not phonemes or not len(t):
        return out
    for start_s, end_s, ph in phonemes:
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


def target_trajectory(
    model: TrackMouthModel,
    dub_audio: np.ndarray,
    sample_rate_hz: int,
    frames: np.ndarray,
    times_s: np.ndarray,
    phonemes: list[tuple[float, float, str]] | None = None,
) -> TargetTrajectory:
    """Step 4: the actor's model on the dub audio at output ``frames`` (int ``(N,)``) shown at
    ``times_s`` (float64 ``(N,)`` seconds); smoothed; closed at silences of at least
    ``min_silence_s`` and on bilabials from ``phonemes`` (``(start_s, end_s, phoneme)``, seconds on the
    output timeline)."""
    opt = model.options
    fa = audio_features_per_frame(dub_audio, sample_rate_hz, times_s)
    if uses_actor_model(model):
        pred = model.regression.predict(fa.features)
    else:
        pred = energy_trajectory(model, fa)
    target = smooth_in_time(pred, times_s, frames, opt.smooth_sigma_s)
    silent = np.zeros(len(frames), bool)
    for a, b in _runs(~fa.speech):
        if times_s[b - 1] - times_s[a] + (float(np.median(np.diff(times_s))) if len(times_s) > 1 else 0.04) >= opt.min_silence_s:
            silent[a:b] = True
    bil = bilabial_frames(times_s, phonemes)
    target[silent | bil] = model.closed
    return TargetTrajectory(target=target.astype(np.float32), predicted=pred.astype(np.float32), silent=silent,
                            bilabial=bil, audio=fa)


# --------------------------------------------------------------------------------------------------
# Step 5: Viterbi retrieval
# --------------------------------------------------------------------------------------------------

def pose_cost(pose_a_deg: np.ndarray, pose_b_deg: np.ndarray, scale_deg: float, roll_weight: float) -> np.ndarray:
    """Squared head-pose difference in units of ``scale_deg``: float ``(..., 3)`` yaw, pitch, roll
    (degrees) -> float64 ``(...)`` = (dyaw^2 + dpitch^2 + roll_weight * droll^2) / scale^2."""
    d = (np.asarray(pose_a_deg, np.float64) - np.asarray(pose_b_deg, np.float64)) / scale_deg
    return d[..., 0] ** 2 + d[..., 1] ** 2 + roll_weight * d[..., 2] ** 2


@dataclass
class ViterbiResult:
    """Chosen library entries (int64 ``(N,)`` indices into the library arrays) and the path cost."""

    choice: np.ndarray
    cost: float


def viterbi_retrieval(
    target: np.ndarray,
    out_pose_deg: np.ndarray,
    lib_desc: np.ndarray,
    lib_pose_deg: np.ndarray,
    lib_next: np.ndarray,
    options: RetrievalOptions | None = None,
    restart: np.ndarray | None = None,
    mouth_scale: float | None = None,
) -> ViterbiResult:
    """Choose one library frame per output frame (step 5).

    Args:
        target: float ``(N, D)`` planned mouth descriptors.
        out_pose_deg: float ``(N, 3)`` yaw, pitch, roll of the frames being replaced (degrees).
        lib_desc: float ``(L, D)`` library mouth descriptors; lib_pose_deg: float ``(L, 3)``.
        lib_next: int ``(L,)`` library index of the next source frame (j + 1) or -1 when it is not in
            the library (end of track, flagged frame).
        restart: bool ``(N,)`` True where output frame i does not follow i - 1 (a gap): no
            continuity cost there.
        mouth_scale: mouth distances are divided by this (default: the library's total descriptor
            variance, so costs are dimensionless).

    Costs (all dimensionless): local = |target - desc|^2 / mouth_scale + pose_weight * pose_cost;
    transition j -> k = 0 if k is j's successor; hold_cost * (times j was already held + 1) if k == j;
    else jump_cost + join_weight * (|desc[succ(j)] - desc[k]|^2 / mouth_scale + pose_cost(succ(j), k)),
    with succ(j) = j at the end of a run. Candidates: the ``top_k`` lowest local costs plus the
    successors of the K best previous states (at most 2K). Viterbi over them; the hold count is carried along
    each state's best path (a first-order approximation of a duration model). O(N (2K)^2 D) time.
    """
    opt = options or RetrievalOptions()
    tgt = np.asarray(target, np.float64)
    op = np.asarray(out_pose_deg, np.float64)
    D = np.asarray(lib_desc, np.float64)
    P = np.asarray(lib_pose_deg, np.float64)
    nxt = np.asarray(lib_next, np.int64)
    n, L = len(tgt), len(D)
    if L == 0:
        raise StageFailed("lipsync: the retrieval library is empty", "the track has no usable frame")
    if n == 0:
        return ViterbiResult(np.zeros(0, np.int64), 0.0)
    scale = float(mouth_scale) if mouth_scale else max(float(((D - D.mean(axis=0)) ** 2).sum(axis=1).mean()), 1e-12)
    restart = np.zeros(n, bool) if restart is None else np.asarray(restart, bool)
    k = min(opt.top_k, L)
    succ_self = np.where(nxt >= 0, nxt, np.arange(L))  # natural successor for the join cost

    def local_costs(i: int) -> np.ndarray:
        m = ((D - tgt[i]) ** 2).sum(axis=1) / scale
        return m + opt.pose_weight * pose_cost(P, op[i], opt.pose_scale_deg, opt.roll_weight)

    lc = local_costs(0)
    cand = np.sort(np.argpartition(lc, k - 1)[:k]) if k < L else np.arange(L)
    score = lc[cand]
    hold = np.zeros(len(cand), np.int64)
    cands, backs = [cand], []
    for i in range(1, n):
        lc = local_costs(i)
        top = np.argpartition(lc, k - 1)[:k] if k < L else np.arange(L)
        if restart[i]:
            new = top
        else:
            best_prev = cands[-1][np.argsort(score)[:k]]  # successors of the K best previous states
            succ = nxt[best_prev]
            new = np.unique(np.concatenate([top, succ[succ >= 0]]))
        prev = cands[-1]
        if restart[i]:
            trans = np.zeros((len(prev), len(new)))
            consec = np.zeros_like(trans, bool)
            same = consec
        else:
            sp = succ_self[prev]
            join = ((D[sp][:, None, :] - D[new][None, :, :]) ** 2).sum(axis=2) / scale \
                + pose_cost(P[sp][:, None, :], P[new][None, :, :], opt.pose_scale_deg, opt.roll_weight)
            trans = opt.jump_cost + opt.join_weight * join
            consec = nxt[prev][:, None] == new[None, :]
            same = prev[:, None] == new[None, :]
            trans = np.where(consec, 0.0, trans)
            trans = np.where(same, opt.hold_cost * (hold[:, None] + 1), trans)
        total = score[:, None] + trans
        best = np.argmin(total, axis=0)
        cols = np.arange(len(new))
        score = total[best, cols] + lc[new]
        hold = np.where(same[best, cols], hold[best] + 1, 0)
        cands.append(new)
        backs.append(best)
    path = np.empty(n, np.int64)
    j = int(np.argmin(score))
    cost = float(score[j])
    for i in range(n - 1, -1, -1):
        path[i] = cands[i][j]
        if i > 0:
            j = int(backs[i - 1][j])
    return ViterbiResult(path, cost)


def run_lengths(source_rows: np.ndarray, frames: np.ndarray | None = None) -> np.ndarray:
    """Lengths of the runs where consecutive output frames show consecutive source rows (int ``(R,)``)."""
    s = np.asarray(source_rows, np.int64)
    if len(s) == 0:
        return np.zeros(0, np.int64)
    cont = np.diff(s) == 1
    if frames is not None:
        cont &= np.diff(np.asarray(frames)) == 1
    cuts = np.flatnonzero(~cont) + 1
    edges = np.concatenate([[0], cuts, [len(s)]])
    return np.diff(edges)


# --------------------------------------------------------------------------------------------------
# The backend
# --------------------------------------------------------------------------------------------------

def _plan_rows(track: FaceTrack, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique output frames inside the track with ``skip == 0``, and their track rows."""
    f = np.unique(np.asarray(frames, np.int64))
    rows = f - track.start_frame
    ok = (rows >= 0) & (rows < len(track.frames))
    f, rows = f[ok], rows[ok]
    keep = np.asarray(track.skip)[rows] == 0
    return f[keep], rows[keep]


def _library_next(library_rows: np.ndarray, n_rows: int) -> np.ndarray:
    """For each library entry, the library index of track row + 1, or -1."""
    pos = np.full(n_rows + 1, -1, np.int64)
    pos[library_rows] = np.arange(len(library_rows))
    return pos[library_rows + 1]


def plan_with_model(
    model: TrackMouthModel,
    frames: np.ndarray,
    frame_times_s: np.ndarray,
    dub_audio: np.ndarray,
    sample_rate_hz: int,
    phonemes: list[tuple[float, float, str]] | None = None,
) -> LipsyncPlan:
    """Steps 4-5 with an already fitted :class:`TrackMouthModel` (see :meth:`RetrievalBackend.plan`)."""
    track, opt = model.track, model.options
    t_all = np.asarray(frame_times_s, np.float64)
    f, rows = _plan_rows(track, frames)
    if len(f) == 0:
        return LipsyncPlan(track.id, f, np.zeros(0, np.int64), np.zeros((0, model.descriptors.shape[1]), np.float32),
                           details={"r2_heldout": model.r2_heldout, "n_library": int(len(model.library_rows)), "n_frames": 0})
    traj = target_trajectory(model, dub_audio, sample_rate_hz, f, t_all[f], phonemes)
    lib = model.library_rows
    res = viterbi_retrieval(traj.target, track.pose_deg[rows], model.descriptors[lib], track.pose_deg[lib],
                            _library_next(lib, len(track.frames)), opt,
                            restart=np.concatenate([[True], np.diff(f) != 1]))
    src_rows = lib[res.choice]
    runs = run_lengths(src_rows, f)
    pose_err = np.abs(track.pose_deg[src_rows, :2].astype(np.float64) - track.pose_deg[rows, :2]).mean()
    mouth_err = float(np.sqrt(((model.descriptors[src_rows] - traj.target) ** 2).sum(axis=1)).mean())
    details = {
        "backend": "retrieval",
        "r2_heldout": round(float(model.r2_heldout), 4),
        "av_correlation": round(float(model.av_correlation), 4),
        "mouth_model": "actor ridge" if uses_actor_model(model) else
                       f"energy mapping (source mouth/speech r {model.av_correlation:.2f} < {opt.min_av_correlation}: "
                       "the soundtrack does not follow this face)",
        "ridge_alpha": model.regression.alpha,
        "n_library": int(len(lib)),
        "n_frames": int(len(f)),
        "n_frames_requested": int(len(np.unique(np.asarray(frames)))),
        "mean_run_length": round(float(runs.mean()), 3),
        "n_silent_frames": int(traj.silent.sum()),
        "n_bilabial_frames": int(traj.bilabial.sum()),
        "mean_pose_error_deg": round(float(pose_err), 3),
        "mean_mouth_error_iod": round(mouth_err, 5),
        "pca_explained_ratio": [round(float(x), 4) for x in model.pca.explained_ratio],
        "path_cost": round(res.cost, 4),
    }
    log.info("track %d: planned %d frames from a library of %d, mean run %.2f frames, R^2 %.3f",
             track.id, len(f), len(lib), runs.mean(), model.r2_heldout)
    return LipsyncPlan(track_id=track.id, frames=f, source_frames=track.frames[src_rows].astype(np.int64),
                       target_mouth=traj.target, details=details)


class RetrievalBackend:
    """``retrieval``: audio-driven mouth retrieval from the actor's own footage (DESIGN.md section 3).

    Args:
        **options: fields of :class:`RetrievalOptions`.

    Raises:
        ConfigError: unknown option or value out of range.
    """

    name = "retrieval"

    def __init__(self, **options) -> None:
        unknown = set(options) - set(RetrievalOptions.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown retrieval option(s): {', '.join(sorted(unknown))}",
                              f"use: {', '.join(RetrievalOptions.__dataclass_fields__)}")
        self.options = RetrievalOptions(**options)
        self.options.validate()

    def plan(
        self,
        analysis: FaceAnalysis,
        track: FaceTrack,
        frames: np.ndarray,
        frame_times_s: np.ndarray,
        source_audio: np.ndarray,
        dub_audio: np.ndarray,
        sample_rate_hz: int,
        phonemes: list[tuple[float, float, str]] | None = None,
    ) -> LipsyncPlan:
        """Plan the re-animation of ``track`` on output ``frames`` (see
        :meth:`lipdub.contracts.lipsync.LipsyncBackend.plan`).

        Returns:
            A :class:`LipsyncPlan` whose ``frames`` are the requested frames inside the track with
            ``skip == 0``, ``source_frames`` the video frame index of the donor of each,
            ``target_mouth`` float32 ``(N, D)`` PCA mouth parameters, and ``details`` with
            ``r2_heldout``, ``n_library``, ``mean_run_length``, ``n_silent_frames``,
            ``n_bilabial_frames``, ``mean_pose_error_deg``, ...

        Raises:
            InputError: too few usable frames in the track, frame times not covering it, bad audio.
        """
        model = fit_track_model(track, frame_times_s, source_audio, sample_rate_hz, self.options)
        return plan_with_model(model, frames, frame_times_s, dub_audio, sample_rate_hz, phonemes)


# --------------------------------------------------------------------------------------------------
# Baseline and self-reconstruction benchmark
# --------------------------------------------------------------------------------------------------

def random_retrieval_plan(track: FaceTrack, frames: np.ndarray, seed: int = 0,
                          library_rows: np.ndarray | None = None) -> LipsyncPlan:
    """Baseline: the same plan frames as the backend, donors drawn uniformly (numpy ``default_rng(seed)``)
    from the usable library (``library_rows``, default all rows with ``skip == 0``)."""
    f, _rows = _plan_rows(track, frames)
    lib = np.flatnonzero(np.asarray(track.skip) == 0) if library_rows is None else np.asarray(library_rows, np.int64)
    if len(lib) == 0:
        raise StageFailed("lipsync: the retrieval library is empty", "the track has no usable frame")
    rng = np.random.default_rng(seed)
    src = lib[rng.integers(0, len(lib), len(f))]
    return LipsyncPlan(track.id, f, track.frames[src].astype(np.int64), None,
                       details={"backend": "random", "seed": seed, "n_library": int(len(lib)), "n_frames": int(len(f))})


def lip_landmark_distance(aligned: np.ndarray, rows_a: np.ndarray, rows_b: np.ndarray) -> float:
    """LMD: mean Euclidean distance (x, y) between the lip landmarks (outer + inner contour, 40
    points) of rows ``rows_a`` and ``rows_b`` of canonical-frame landmarks (``aligned``, inter-ocular
    units, so the result is already normalized by the 33-263 distance). Chen et al., "Lip Movements
    Generation at a Glance" (ECCV 2018) define LMD on mouth landmarks; here on aligned faces."""
    a = aligned[np.asarray(rows_a)][:, LIP_POINTS, :2]
    b = aligned[np.asarray(rows_b)][:, LIP_POINTS, :2]
    return float(np.linalg.norm(a - b, axis=-1).mean())


@dataclass
class SelfReconstruction:
    """Result of :func:`self_reconstruction_lmd` (LMD in inter-ocular units; lower is better)."""

    lmd_retrieval: float
    lmd_random: float
    lmd_mean_shape: float
    lmd_oracle: float
    r2_heldout: float
    n_fit: int
    n_test: int
    mean_run_length: float
    plan: LipsyncPlan

    @property
    def ratio(self) -> float:
        """lmd_retrieval / lmd_random (the product requirement is <= 0.6)."""
        return self.lmd_retrieval / max(self.lmd_random, 1e-12)


def self_reconstruction_lmd(
    track: FaceTrack,
    frame_times_s: np.ndarray,
    audio: np.ndarray,
    sample_rate_hz: int,
    fit_fraction: float = 0.7,
    options: RetrievalOptions | None = None,
    n_random: int = 20,
    seed: int = 0,
) -> SelfReconstruction:
    """Self-reconstruction benchmark (DESIGN.md section 4): fit the mouth PCA, the audio model and the
    library on the first ``fit_fraction`` of the track's rows (audio + mouths), plan the rest from its
    own audio without seeing its mouths (the true head pose of those frames is used, as in a dub),
    and compare the retrieved donors' lips with the true lips (LMD).

    Baselines: uniform random donors from the same library (LMD averaged over ``n_random`` seeds
    starting at ``seed``), and the mean lip shape of the library (every frame gets the average mouth).
    Bound: ``lmd_oracle`` is the same retrieval (closures, Viterbi costs) given the *true* mouth
    descriptors of the test frames as its target: what a perfect audio-to-mouth model would reach
    with this library; the gap between it and ``lmd_retrieval`` is the audio model's share.

    Raises:
        InputError: too few usable frames in either part.
    """
    opt = options or RetrievalOptions()
    n = len(track.frames)
    cut = int(round(n * fit_fraction))
    fit_rows = np.zeros(n, bool)
    fit_rows[:cut] = True
    usable = np.asarray(track.skip) == 0
    if (usable & ~fit_rows).sum() < 1:
        raise InputError(f"track {track.id}: no usable frame after the first {fit_fraction:.0%}", "use a longer clip")
    model = fit_track_model(track, frame_times_s, audio, sample_rate_hz, opt, fit_rows=fit_rows)
    test_frames = track.frames[cut:].astype(np.int64)
    plan = plan_with_model(model, test_frames, frame_times_s, audio, sample_rate_hz)
    true_rows = plan.frames - track.start_frame
    got_rows = plan.source_frames - track.start_frame
    lmd = lip_landmark_distance(model.aligned, got_rows, true_rows)
    # oracle: the true descriptors as target, through the same closures and Viterbi
    traj = target_trajectory(model, audio, sample_rate_hz, plan.frames, np.asarray(frame_times_s, np.float64)[plan.frames])
    oracle_target = model.descriptors[true_rows].copy()
    oracle_target[traj.silent | traj.bilabial] = model.closed
    lib = model.library_rows
    ores = viterbi_retrieval(oracle_target, track.pose_deg[true_rows], model.descriptors[lib], track.pose_deg[lib],
                             _library_next(lib, n), opt, restart=np.concatenate([[True], np.diff(plan.frames) != 1]))
    lmd_oracle = lip_landmark_distance(model.aligned, lib[ores.choice], true_rows)
    rnd = []
    for s in range(seed, seed + n_random):
        rp = random_retrieval_plan(track, test_frames, seed=s, library_rows=model.library_rows)
        rnd.append(lip_landmark_distance(model.aligned, rp.source_frames - track.start_frame, true_rows))
    mean_lips = model.aligned[model.library_rows][:, LIP_POINTS, :2].mean(axis=0)
    lmd_mean = float(np.linalg.norm(model.aligned[true_rows][:, LIP_POINTS, :2] - mean_lips, axis=-1).mean())
    return SelfReconstruction(lmd_retrieval=lmd, lmd_random=float(np.mean(rnd)), lmd_mean_shape=lmd_mean, lmd_oracle=lmd_oracle,
                              r2_heldout=model.r2_heldout, n_fit=int(len(model.library_rows)), n_test=int(len(plan.frames)),
                              mean_run_length=float(plan.details["mean_run_length"]), plan=plan)
