"""The ``retrieval`` backend's model of one actor, fitted on the source footage (DESIGN.md section 3,
steps 1-3): mouth descriptors, the labelled library, the per-viseme targets and the acoustic
audio-to-mouth model kept as the fallback.

* **Mouth descriptor** of every frame (:func:`lipdub.backends.lipsync.features.mouth_descriptors`):
  aligned lip and jaw landmarks reduced by PCA (component 0 = opening), in inter-ocular units. The
  landmarks are the *measured* ones (``FaceTrack.landmarks_raw``): the library is a set of pictures, and
  a frame must be described by what it shows; the smoothed track (One Euro filter) lags the pictures by
  about a frame while the mouth moves, so a frame chosen by its smoothed shape shows the mouth of the
  next frame.
* **Viseme labels**: when the source speech has phoneme timings (transcript words + G2P + alignment,
  :mod:`lipdub.lipsync.align`) every library frame gets the viseme of the phoneme that covers it,
  and the actor's targets per viseme are learned from them
  (:func:`lipdub.backends.lipsync.viseme_targets.fit_actor_visemes`). Labels are trusted only when the
  source mouth follows its own soundtrack (mouth opening / speech envelope correlation at least
  :attr:`RetrievalOptions.min_av_correlation`): a voice-over's phonemes say nothing of the mouth seen,
  and the speaker-independent prior is used instead.
* **Audio features** per video frame (:func:`lipdub.backends.lipsync.features.audio_features_per_frame`)
  and an **acoustic model**: ridge regression (:mod:`lipdub.backends.lipsync.ridge`) from the source
  audio features to the descriptors of the same frames, used when the dub has no phoneme timings and
  the source mouth follows its soundtrack; otherwise a speaker-independent level-to-opening mapping
  (:func:`lipdub.backends.lipsync.trajectory.energy_trajectory`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ...contracts.faces import FaceTrack
from ...errors import ConfigError, InputError
from ...faces.speakers import lagged_correlation, speech_envelope_per_frame
from ...faces.tracking import mouth_opening
from ...lipsync.visemes import stop_closure_starts, viseme_segments
from ...media.probe import display_centres
from .features import FrameAudio, MouthPCA, align_landmarks, audio_features_per_frame, mouth_shapes
from .ridge import DEFAULT_ALPHAS, RidgeModel, fit_ridge_blocked_cv
from .unit_selection import SearchCosts
from .viseme_targets import ActorVisemes, fit_actor_visemes, frame_labels, lip_width

log = logging.getLogger(__name__)

DRIVERS = ("auto", "visemes", "acoustic")


@dataclass
class RetrievalOptions(SearchCosts):
    """Options of the ``retrieval`` backend (defaults are general, not fitted to a clip); the search
    weights are those of :class:`~lipdub.backends.lipsync.unit_selection.SearchCosts`.

    Attributes:
        driver: what drives the mouth: ``"visemes"`` (the dub's phoneme timings; an error without
            them), ``"acoustic"`` (the audio-to-mouth model, phonemes used for p/b/m closures only), or
            ``"auto"``: visemes when the dub's phonemes are given, else acoustic.
        n_components: PCA mouth parameters.
        alphas: ridge strengths tried (inputs are standardized, so these are in units of frames).
        n_folds: blocked cross-validation folds.
        closed_quantile: the closed mouth is the mean descriptor of the library frames whose
            ``mouth_opening`` is at or below this quantile.
        smooth_sigma_s: Gaussian smoothing of the acoustic target trajectory, seconds.
        min_silence_s: a dub pause at least this long closes the mouth.
        min_av_correlation: the source is this face's own speech when the track's mouth opening
            correlates with the source speech envelope (Pearson r at the best lag within +-2 frames,
            as the active-speaker match of :mod:`lipdub.faces.speakers`, whose off-screen threshold this
            is) at least this much. Only then are the source's viseme labels learned from and the
            actor's ridge used; below it the speaker-independent prior / energy mapping drive the mouth,
            and the plan's details say so.
        energy_neighbours: library frames averaged per target in the energy mapping.
        prior_frames: weight of the speaker-independent viseme prior, in frames.
        loudness_range_db: on the viseme path, the opening factor of a frame is
            ``1 + (level - line median level) / loudness_range_db`` (clipped to [0, 1.5]): 10 dB below
            the median closes the mouth, 5 dB above opens it by half again the viseme's target
            (:func:`lipdub.backends.lipsync.viseme_targets.loudness_gain`); 0: the visemes alone.
        opening_weight: the descriptor gets one more parameter, the measured mouth opening
            (``FaceTrack.mouth_opening``, inter-ocular units) times this weight, so that targets and
            the search weigh the inner-lip gap, which the eye and the sync measures read first, above
            the other shape parameters (0: PCA parameters only).
        visual_lead_s: on the viseme path the mouth of a frame is the one for the speech heard this
            much later: visible articulation leads the sound by 0-70 ms in running speech (Schwartz and
            Savariaux, "No, there is no 150 ms lead of visual speech on auditory speech", PLoS Comput
            Biol 2014).
    """

    driver: str = "auto"
    n_components: int = 6
    alphas: tuple[float, ...] = DEFAULT_ALPHAS
    n_folds: int = 5
    closed_quantile: float = 0.10
    smooth_sigma_s: float = 0.030
    min_silence_s: float = 0.100
    min_av_correlation: float = 0.15
    energy_neighbours: int = 5
    prior_frames: float = 4.0
    loudness_range_db: float = 10.0
    opening_weight: float = 0.0
    visual_lead_s: float = 0.0

    def validate(self) -> None:
        """Raises ConfigError on a value out of range."""
        if self.driver not in DRIVERS:
            raise ConfigError(f"retrieval: unknown driver {self.driver!r}", f"use one of: {', '.join(DRIVERS)}")
        if self.n_components < 1 or self.top_k < 1 or self.n_folds < 2:
            raise ConfigError("retrieval: n_components and top_k must be >= 1 and n_folds >= 2", "use the defaults")
        if not 0 < self.closed_quantile < 1:
            raise ConfigError(f"retrieval: closed_quantile {self.closed_quantile} must be in (0, 1)", "use 0.1")
        if min(self.smooth_sigma_s, self.min_silence_s, self.pose_scale_deg, self.jump_cost, self.join_weight,
               self.hold_cost, self.pose_weight, self.roll_weight, self.label_weight, self.context_weight,
               self.prior_frames, self.opening_weight) < 0 or self.pose_scale_deg == 0:
            raise ConfigError("retrieval: weights, scales and durations must be >= 0 (pose_scale_deg > 0)", "use the defaults")
        if not 0 <= self.visual_lead_s <= 0.2:
            raise ConfigError(f"retrieval: visual_lead_s {self.visual_lead_s} must be in [0, 0.2] s", "use 0 (the default) to 0.07")
        if self.loudness_range_db < 0:
            raise ConfigError(f"retrieval: loudness_range_db {self.loudness_range_db} must be >= 0", "use 10")
        if not self.alphas or min(self.alphas) <= 0:
            raise ConfigError("retrieval: ridge alphas must be > 0", "use the defaults")


@dataclass
class TrackMouthModel:
    """Everything fitted on one track's source footage.

    Attributes:
        track: the face track.
        aligned: float64 ``(T, 478, 3)`` measured landmarks in the canonical face frame (inter-ocular units).
        descriptors: float32 ``(T, D)`` mouth descriptor of every track row.
        pca: the mouth PCA (fitted on ``fit_rows``).
        usable: bool ``(T,)`` rows with ``skip == 0``.
        fit_rows: bool ``(T,)`` rows the PCA and the models were fitted on.
        library_rows: int64 ``(L,)`` track rows that may be shown (usable, in ``fit_rows``).
        regression: the acoustic audio-to-mouth ridge model.
        r2_heldout: nested blocked-CV R^2 of the regression (float; may be <= 0 on a hard clip).
        av_correlation: lagged Pearson r of the fit rows' mouth opening with the source speech envelope.
        closed: float32 ``(D,)`` descriptor of a closed mouth.
        closed_rows: bool ``(T,)`` rows whose lips are closed: opening at or below the library's
            ``2 * closed_quantile`` quantile (the frames the search may show on a p, b, m or a pause).
        source_audio: :class:`FrameAudio` of the track rows.
        labels: int64 ``(T,)`` viseme label of every track row (-1 unknown), or None when the source has
            no (trusted) phoneme labels.
        visemes: the actor's per-viseme targets.
        label_note: why the labels are or are not used (for the plan's details).
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
    closed_rows: np.ndarray
    source_audio: FrameAudio
    labels: np.ndarray | None
    visemes: ActorVisemes
    label_note: str = ""
    options: RetrievalOptions = field(default_factory=RetrievalOptions)


def _check_rows(track: FaceTrack, t_all: np.ndarray, rows: np.ndarray, opt: RetrievalOptions) -> None:
    if track.end_frame > len(t_all):
        raise InputError(f"frame times cover {len(t_all)} frames but track {track.id} ends at frame {track.end_frame}",
                         "pass the frame times of the analysed video (lipdub.pipeline.video_frame_times)")
    if rows.sum() < 2 * opt.n_folds:
        raise InputError(f"track {track.id} has {int(rows.sum())} usable frames, too few for the retrieval lip-sync",
                         f"the retrieval backend needs at least {2 * opt.n_folds} frames with a measured, frontal face")


def _labels(times_s: np.ndarray, source_phonemes, audio: np.ndarray, sample_rate_hz: int, speech: np.ndarray, av_r: float,
            opt: RetrievalOptions) -> tuple[np.ndarray | None, str]:
    """Viseme labels of the track rows from the source phonemes, or None with the reason."""
    if not source_phonemes:
        return None, "no source phoneme timings"
    if av_r < opt.min_av_correlation:
        return None, (f"source phonemes not used: the source mouth does not follow its soundtrack "
                      f"(r {av_r:.2f} < {opt.min_av_correlation})")
    seg = stop_closure_starts(viseme_segments(source_phonemes), audio, sample_rate_hz)
    return frame_labels(times_s, seg, speech), f"{len(seg)} source viseme segments"


def fit_track_model(
    track: FaceTrack,
    frame_times_s: np.ndarray,
    source_audio: np.ndarray,
    sample_rate_hz: int,
    options: RetrievalOptions | None = None,
    fit_rows: np.ndarray | None = None,
    source_phonemes=None,
) -> TrackMouthModel:
    """Steps 1-3 of DESIGN.md section 3 on one track.

    Args:
        track: the face track (smoothed ``landmarks`` are used).
        frame_times_s: float64 ``(frame_count,)`` presentation time of every video frame.
        source_audio: float32 mono source dialogue at ``sample_rate_hz``.
        fit_rows: bool ``(T,)`` restrict fitting and the library to these rows (self-reconstruction);
            default all rows. Only rows with ``skip == 0`` are ever used.
        source_phonemes: phoneme timings of the source speech (seconds on the video's timeline;
            ``(start_s, end_s, phoneme)`` or PhonemeTiming), or None.

    Raises:
        InputError: frame times do not cover the track; too few usable frames.
    """
    opt = options or RetrievalOptions()
    opt.validate()
    t_all = np.asarray(frame_times_s, np.float64)
    usable = np.asarray(track.skip) == 0
    rows = usable.copy() if fit_rows is None else usable & np.asarray(fit_rows, bool)
    _check_rows(track, t_all, rows, opt)
    aligned = align_landmarks(track.landmarks_raw, usable)
    opening = np.asarray(mouth_opening(track.landmarks_raw), np.float64)
    pca = MouthPCA.fit(mouth_shapes(aligned)[rows], opt.n_components, opening[rows])
    desc = pca.transform(mouth_shapes(aligned))
    if opt.opening_weight > 0:
        desc = np.concatenate([desc, (opt.opening_weight * opening[:, None]).astype(np.float32)], axis=1)
    times = display_centres(t_all, track.frames)
    audio = audio_features_per_frame(source_audio, sample_rate_hz, times)
    fit_idx = np.flatnonzero(rows)
    regression, r2 = fit_ridge_blocked_cv(audio.features[fit_idx], desc[fit_idx], opt.alphas, opt.n_folds)
    closed = desc[fit_idx[opening[fit_idx] <= np.quantile(opening[fit_idx], opt.closed_quantile)]].mean(axis=0)
    env = speech_envelope_per_frame(source_audio, sample_rate_hz, t_all[track.frames])
    av_r, _lag = lagged_correlation(opening[fit_idx], env[fit_idx].astype(np.float64), max_lag=2)
    labels, note = _labels(times, source_phonemes, source_audio, sample_rate_hz, audio.speech, av_r, opt)
    vis = fit_actor_visemes(desc[fit_idx], None if labels is None else labels[fit_idx], opening[fit_idx],
                            lip_width(aligned)[fit_idx], audio.speech[fit_idx], closed, opt.prior_frames)
    log.info("track %d: ridge alpha %.3g, held-out R^2 %.3f on %d frames; mouth/speech r %.3f; %s; %s",
             track.id, regression.alpha, r2, len(fit_idx), av_r, note, vis.summary())
    return TrackMouthModel(track=track, aligned=aligned, descriptors=desc, pca=pca, usable=usable, fit_rows=rows,
                           library_rows=fit_idx.astype(np.int64), regression=regression, r2_heldout=r2,
                           av_correlation=float(av_r), closed=closed.astype(np.float32),
                           closed_rows=opening <= np.quantile(opening[fit_idx], min(0.5, 2 * opt.closed_quantile)), source_audio=audio,
                           labels=labels, visemes=vis, label_note=note, options=opt)


def uses_actor_model(model: TrackMouthModel) -> bool:
    """True when the acoustic target comes from the actor's ridge model (the source soundtrack is this
    face's speech, see :attr:`RetrievalOptions.min_av_correlation`), False for the energy mapping."""
    return model.av_correlation >= model.options.min_av_correlation
