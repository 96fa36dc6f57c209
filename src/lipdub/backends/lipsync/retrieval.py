"""The embedded lip-sync backend ``retrieval`` (DESIGN.md section 3): phoneme-driven mouth retrieval
from the actor's own footage, after Video Rewrite (Bregler, Covell, Slaney, "Video Rewrite: Driving
Visual Speech with Audio", SIGGRAPH 1997). No weights: everything is fitted on the source clip.

For one face track:

1. **Actor model** (:mod:`lipdub.backends.lipsync.actor_model`): mouth descriptors of every frame, viseme
   labels of the library frames from the source's phoneme timings, the actor's mouth per viseme
   (:mod:`lipdub.backends.lipsync.viseme_targets`), and the acoustic audio-to-mouth model.
2. **Target trajectory** of the output frames. With the dub's phoneme timings (the TTS gives them, or
   :mod:`lipdub.lipsync.align` aligns them): the actor's viseme targets blended by Cohen-Massaro
   dominance functions, opened by the dub's loudness, closed on pauses and on p, b, m
   (:func:`lipdub.backends.lipsync.viseme_targets.viseme_trajectory`); speech frames no phoneme reaches
   get the acoustic target. Without phonemes: the acoustic target alone
   (:func:`lipdub.backends.lipsync.trajectory.target_trajectory`). ``details["driver"]`` says which.
3. **Unit selection** (:func:`lipdub.backends.lipsync.unit_selection.viterbi_retrieval`): per output
   frame a library frame matching the target mouth, the head pose of the frame being replaced, closed
   lips where they must close (p, b, m, pauses) and, when both sides are labelled, the viseme and its
   neighbours; runs of consecutive source frames are free, cuts cost.

The plan's ``source_frames`` are *video frame indices* of the track (``track.frames`` values). Frames of
``frames`` where the track is absent or flagged (``skip != 0``) are left out of the plan, so the
compositor leaves them untouched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ...contracts.faces import FaceAnalysis, FaceTrack
from ...contracts.lipsync import LipsyncPlan
from ...errors import ConfigError
from ...lipsync.visemes import as_timings, stop_closure_starts, viseme_segments
from ...media.probe import display_centres
from .actor_model import RetrievalOptions, TrackMouthModel, fit_track_model, uses_actor_model
from .features import FrameAudio, audio_features_per_frame
from .trajectory import acoustic_prediction, silent_frames, smooth_in_time, target_trajectory
from .unit_selection import Labels, context_labels, run_lengths, viterbi_retrieval
from .viseme_targets import viseme_trajectory

log = logging.getLogger(__name__)

__all__ = ["RetrievalBackend", "RetrievalOptions", "TrackMouthModel", "PlannedMouth", "fit_track_model",
           "plan_rows", "plan_with_model", "planned_mouth", "search", "uses_actor_model"]


def plan_rows(track: FaceTrack, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


@dataclass
class PlannedMouth:
    """The target of the output frames and how it was made.

    Attributes:
        target: float32 ``(N, D)`` descriptors.
        labels: int64 ``(N,)`` viseme labels of the output frames (None on the acoustic path).
        silent: bool ``(N,)`` closed for a pause; closure: bool ``(N,)`` closed for p, b, m.
        driver: ``"visemes"`` or ``"acoustic"``.
        n_acoustic: speech frames on the viseme path that no phoneme reaches (acoustic target there).
        audio: the dub's :class:`FrameAudio` at the output frames.
        unmapped: phonemes of the dub outside the viseme inventory (left to their neighbours).
    """

    target: np.ndarray
    labels: np.ndarray | None
    silent: np.ndarray
    closure: np.ndarray
    driver: str
    n_acoustic: int
    audio: FrameAudio
    unmapped: tuple[str, ...] = ()


def planned_mouth(model: TrackMouthModel, frames: np.ndarray, times_s: np.ndarray, dub_audio: np.ndarray,
                  sample_rate_hz: int, phonemes=None) -> PlannedMouth:
    """Step 2: the target of output ``frames`` (int ``(N,)``; ``times_s`` float ``(N,)`` the middle of
    their display intervals, :func:`~lipdub.media.probe.display_centres`) for the dub audio, by the viseme path when ``phonemes`` are given (and ``driver`` allows), else acoustic.

    Raises:
        ConfigError: ``driver="visemes"`` without phoneme timings.
    """
    opt = model.options
    timings = as_timings(phonemes)
    use_visemes = opt.driver == "visemes" or (opt.driver == "auto" and bool(timings))
    if use_visemes and not timings:
        raise ConfigError("retrieval: driver 'visemes' needs the dub's phoneme timings",
                          "use a TTS that gives them (espeak-ng, kokoro), align the dub (lipdub.lipsync.align), or driver 'auto'")
    if not use_visemes:
        tr = target_trajectory(model, dub_audio, sample_rate_hz, frames, times_s, timings or None)
        return PlannedMouth(tr.target, None, tr.silent, tr.bilabial, "acoustic", 0, tr.audio)
    times_s = np.asarray(times_s, np.float64) + opt.visual_lead_s
    fa = audio_features_per_frame(dub_audio, sample_rate_hz, times_s)
    silent = silent_frames(fa, times_s, opt.min_silence_s)
    seg = stop_closure_starts(viseme_segments(timings), dub_audio, sample_rate_hz)
    vt = viseme_trajectory(model.visemes, seg, times_s, fa, silent, model.closed, opt.loudness_range_db)
    target = vt.target.astype(np.float64)
    fill = fa.speech & ~vt.covered & ~silent
    if fill.any():
        acoustic = smooth_in_time(acoustic_prediction(model, fa), times_s, frames, opt.smooth_sigma_s)
        target[fill] = acoustic[fill]
    return PlannedMouth(target.astype(np.float32), vt.labels, silent, vt.closure, "visemes", int(fill.sum()), fa,
                        tuple(sorted(set(seg.unknown))))


def _details(model: TrackMouthModel, pm: PlannedMouth, f, frames, rows, src_rows, res) -> dict:
    track, opt = model.track, model.options
    runs = run_lengths(src_rows, f)
    pose_err = np.abs(track.pose_deg[src_rows, :2].astype(np.float64) - track.pose_deg[rows, :2]).mean()
    mouth_err = float(np.sqrt(((model.descriptors[src_rows] - pm.target) ** 2).sum(axis=1)).mean())
    acoustic = ("actor ridge" if uses_actor_model(model) else
                f"energy mapping (source mouth/speech r {model.av_correlation:.2f} < {opt.min_av_correlation}: "
                "the soundtrack does not follow this face)")
    out = {
        "backend": "retrieval",
        "driver": pm.driver,
        "mouth_model": f"visemes ({model.visemes.summary()['viseme_targets']})" if pm.driver == "visemes" else acoustic,
        "source_labels": model.label_note,
        "r2_heldout": round(float(model.r2_heldout), 4),
        "av_correlation": round(float(model.av_correlation), 4),
        "ridge_alpha": model.regression.alpha,
        "n_library": int(len(model.library_rows)),
        "n_frames": int(len(f)),
        "n_frames_requested": int(len(np.unique(np.asarray(frames)))),
        "n_frames_acoustic": int(len(f)) if pm.driver == "acoustic" else pm.n_acoustic,
        "mean_run_length": round(float(runs.mean()), 3),
        "n_silent_frames": int(pm.silent.sum()),
        "n_bilabial_frames": int(pm.closure.sum()),
        "mean_pose_error_deg": round(float(pose_err), 3),
        "mean_mouth_error_iod": round(mouth_err, 5),
        "pca_explained_ratio": [round(float(x), 4) for x in model.pca.explained_ratio],
        "path_cost": round(res.cost, 4),
    }
    if pm.driver == "visemes":
        out.update(model.visemes.summary())
        out["unmapped_phonemes"] = " ".join(pm.unmapped)
        if model.labels is not None:
            out["label_match"] = round(float((model.labels[src_rows] == pm.labels).mean()), 4)
    return out


def search(model: TrackMouthModel, f: np.ndarray, rows: np.ndarray, target: np.ndarray,
           out_labels: np.ndarray | None = None, closed: np.ndarray | None = None):
    """Step 3: unit selection of the library frames for output frames ``f`` (track rows ``rows``) and
    ``target`` (float ``(N, D)``); label costs when ``out_labels`` (int ``(N,)``) and the library's
    labels are both known; ``closed`` (bool ``(N,)``): frames that must show closed lips (one of the
    library's :attr:`TrackMouthModel.closed_rows`). Returns ``(source track rows int64 (N,), ViterbiResult)``."""
    track, lib = model.track, model.library_rows
    restart = np.concatenate([[True], np.diff(f) != 1])
    labels = None
    if out_labels is not None and model.labels is not None:
        labels = Labels(context_labels(out_labels, restart), context_labels(model.labels)[lib])
    res = viterbi_retrieval(target, track.pose_deg[rows], model.descriptors[lib], track.pose_deg[lib],
                            _library_next(lib, len(track.frames)), model.options, restart=restart, labels=labels,
                            closed_out=closed, lib_closed=model.closed_rows[lib])
    return lib[res.choice], res


def plan_with_model(
    model: TrackMouthModel,
    frames: np.ndarray,
    frame_times_s: np.ndarray,
    dub_audio: np.ndarray,
    sample_rate_hz: int,
    phonemes=None,
) -> LipsyncPlan:
    """Steps 2-3 with an already fitted :class:`TrackMouthModel` (see :meth:`RetrievalBackend.plan`)."""
    track = model.track
    t_all = np.asarray(frame_times_s, np.float64)
    f, rows = plan_rows(track, frames)
    if len(f) == 0:
        return LipsyncPlan(track.id, f, np.zeros(0, np.int64), np.zeros((0, model.descriptors.shape[1]), np.float32),
                           details={"backend": "retrieval", "r2_heldout": model.r2_heldout,
                                    "n_library": int(len(model.library_rows)), "n_frames": 0})
    pm = planned_mouth(model, f, display_centres(t_all, f), dub_audio, sample_rate_hz, phonemes)
    src_rows, res = search(model, f, rows, pm.target, pm.labels, pm.silent | pm.closure)
    details = _details(model, pm, f, frames, rows, src_rows, res)
    log.info("track %d: planned %d frames (%s) from a library of %d, mean run %.2f frames",
             track.id, len(f), details["mouth_model"], len(model.library_rows), details["mean_run_length"])
    return LipsyncPlan(track_id=track.id, frames=f, source_frames=track.frames[src_rows].astype(np.int64),
                       target_mouth=pm.target, details=details)


class RetrievalBackend:
    """``retrieval``: phoneme-driven mouth retrieval from the actor's own footage (DESIGN.md section 3).

    Capabilities: ``uses_phonemes = True`` (the dub's and the source's phoneme timings drive the
    mouth; without the dub's the acoustic model does, without the source's the viseme targets are the
    speaker-independent prior).

    Args:
        **options: fields of :class:`RetrievalOptions`.

    Raises:
        ConfigError: unknown option or value out of range.
    """

    name = "retrieval"
    uses_phonemes = True

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
        phonemes=None,
        source_phonemes=None,
    ) -> LipsyncPlan:
        """Plan the re-animation of ``track`` on output ``frames`` (see
        :meth:`lipdub.contracts.lipsync.LipsyncBackend.plan`).

        Returns:
            A :class:`LipsyncPlan` whose ``frames`` are the requested frames inside the track with
            ``skip == 0``, ``source_frames`` the video frame index of the donor of each,
            ``target_mouth`` float32 ``(N, D)`` PCA mouth parameters, and ``details`` with ``driver``
            (``visemes`` / ``acoustic``), ``mouth_model``, ``source_labels``, ``n_frames_acoustic``,
            ``r2_heldout``, ``n_library``, ``mean_run_length``, ``n_silent_frames``,
            ``n_bilabial_frames``, ``mean_pose_error_deg``, ...

        Raises:
            InputError: too few usable frames in the track, frame times not covering it, bad audio.
            ConfigError: ``driver="visemes"`` without ``phonemes``.
        """
        model = fit_track_model(track, frame_times_s, source_audio, sample_rate_hz, self.options,
                                source_phonemes=source_phonemes)
        return plan_with_model(model, frames, frame_times_s, dub_audio, sample_rate_hz, phonemes)
