"""Self-reconstruction benchmark of the ``retrieval`` backend (DESIGN.md section 4) and its baselines.

Fit on the first part of a talking-head track (its audio, mouths and, when given, phoneme labels), plan
the rest from its own audio and phonemes without seeing its mouths (the true head pose of those frames
is used, as in a dub), and compare the retrieved donors' lips with the true lips: LMD (Chen et al.,
"Lip Movements Generation at a Glance", ECCV 2018, lip landmark distance; here on faces aligned to the
track's canonical frame, so in inter-ocular units).

Baselines, all drawn from the same library:

* ``random_closed``: random mouths through the *same* closures (pauses, p b m) and the same search
  (head pose, continuity): the target of every frame is the descriptor of a uniformly drawn library
  frame. Its ratio to the method measures the mouth model alone.
* ``random``: uniform random donors (no closures, no pose matching), the older, weaker baseline.
* ``mean_shape``: every frame gets the library's mean lip shape (no retrieval).
* ``oracle``: the same closures and search given the *true* descriptors as the target: what a perfect
  mouth model reaches with this library.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...contracts.faces import FaceTrack
from ...contracts.lipsync import LipsyncPlan
from ...errors import InputError, StageFailed
from ...lipsync.visemes import as_timings
from ...media.probe import display_centres
from .actor_model import RetrievalOptions, fit_track_model
from .features import LIP_POINTS
from .retrieval import plan_rows, plan_with_model, planned_mouth, search


def random_retrieval_plan(track: FaceTrack, frames: np.ndarray, seed: int = 0,
                          library_rows: np.ndarray | None = None) -> LipsyncPlan:
    """Baseline: the same plan frames as the backend, donors drawn uniformly (numpy ``default_rng(seed)``)
    from the usable library (``library_rows``, default all rows with ``skip == 0``).

    Raises:
        StageFailed: the library is empty.
    """
    f, _rows = plan_rows(track, frames)
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
    units, so the result is already normalized by the 33-263 distance)."""
    a = aligned[np.asarray(rows_a)][:, LIP_POINTS, :2]
    b = aligned[np.asarray(rows_b)][:, LIP_POINTS, :2]
    return float(np.linalg.norm(a - b, axis=-1).mean())


@dataclass
class SelfReconstruction:
    """Result of :func:`self_reconstruction_lmd` (LMD in inter-ocular units; lower is better).

    ``driver`` is the plan's (``visemes`` with source phonemes, else ``acoustic``); ``plan`` the method's
    plan of the test frames; ``random_closed_plan`` the ``random_closed`` baseline's plan for ``seed``.
    """

    lmd_retrieval: float
    lmd_random_closed: float
    lmd_random: float
    lmd_mean_shape: float
    lmd_oracle: float
    r2_heldout: float
    n_fit: int
    n_test: int
    mean_run_length: float
    driver: str
    plan: LipsyncPlan
    random_closed_plan: LipsyncPlan

    @property
    def ratio(self) -> float:
        """lmd_retrieval / lmd_random_closed: the mouth model against random mouths given the same
        closures and pose matching (the requirement is <= 0.5)."""
        return self.lmd_retrieval / max(self.lmd_random_closed, 1e-12)

    @property
    def ratio_uniform(self) -> float:
        """lmd_retrieval / lmd_random (uniform random donors)."""
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
    phonemes=None,
) -> SelfReconstruction:
    """Self-reconstruction (see the module docstring) of the last ``1 - fit_fraction`` of ``track``.

    Args:
        audio: float mono, the track's own soundtrack at ``sample_rate_hz``.
        phonemes: phoneme timings of that soundtrack (seconds on the video's timeline; e.g.
            :func:`lipdub.lipsync.align.align_segments` of its transcript): the fit part's label the
            library, the test part's drive the plan. None: the acoustic path.
        n_random: seeds averaged for the random baselines (from ``seed``).

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
    t_all = np.asarray(frame_times_s, np.float64)
    timings = as_timings(phonemes)
    cut_s = float(t_all[track.frames[cut]]) if cut < n else float("inf")
    fit_ph = [p for p in timings if p[1] <= cut_s]
    test_ph = [p for p in timings if p[0] >= cut_s]
    model = fit_track_model(track, t_all, audio, sample_rate_hz, opt, fit_rows=fit_rows, source_phonemes=fit_ph or None)
    test_frames = track.frames[cut:].astype(np.int64)
    plan = plan_with_model(model, test_frames, t_all, audio, sample_rate_hz, test_ph or None)
    f, rows = plan_rows(track, test_frames)
    true_rows = rows
    lmd = lip_landmark_distance(model.aligned, plan.source_frames - track.start_frame, true_rows)
    pm = planned_mouth(model, f, display_centres(t_all, f), audio, sample_rate_hz, test_ph or None)
    closed_mask = pm.silent | pm.closure

    def through_search(target: np.ndarray) -> np.ndarray:
        tg = np.asarray(target, np.float64).copy()
        tg[closed_mask] = model.closed
        return search(model, f, rows, tg, None, closed_mask)[0]

    oracle_rows = through_search(model.descriptors[true_rows])
    lib = model.library_rows
    rc, rnd, rc_plan = [], [], None
    for s in range(seed, seed + n_random):
        rng = np.random.default_rng(s)
        got = through_search(model.descriptors[lib[rng.integers(0, len(lib), len(f))]])
        rc.append(lip_landmark_distance(model.aligned, got, true_rows))
        if rc_plan is None:
            rc_plan = LipsyncPlan(track.id, f, track.frames[got].astype(np.int64), None, details={"backend": "random_closed", "seed": s})
        rp = random_retrieval_plan(track, test_frames, seed=s, library_rows=lib)
        rnd.append(lip_landmark_distance(model.aligned, rp.source_frames - track.start_frame, true_rows))
    mean_lips = model.aligned[lib][:, LIP_POINTS, :2].mean(axis=0)
    lmd_mean = float(np.linalg.norm(model.aligned[true_rows][:, LIP_POINTS, :2] - mean_lips, axis=-1).mean())
    return SelfReconstruction(
        lmd_retrieval=lmd, lmd_random_closed=float(np.mean(rc)), lmd_random=float(np.mean(rnd)), lmd_mean_shape=lmd_mean,
        lmd_oracle=lip_landmark_distance(model.aligned, oracle_rows, true_rows), r2_heldout=model.r2_heldout,
        n_fit=int(len(lib)), n_test=int(len(f)), mean_run_length=float(plan.details["mean_run_length"]),
        driver=plan.details["driver"], plan=plan, random_closed_plan=rc_plan)
