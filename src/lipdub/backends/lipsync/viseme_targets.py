"""Viseme targets of one actor and the phoneme-driven mouth trajectory (DESIGN.md section 3).

* **Actor's visemes** (:func:`fit_actor_visemes`). Every library frame carries the viseme of the source
  phoneme that covers it (:func:`frame_labels`); the actor's target for viseme v is the mean mouth
  descriptor of the frames labelled v, shrunk towards a speaker-independent prior with the weight of
  ``prior_frames`` frames (a Bayesian mean with a prior worth that many observations), so a viseme seen
  once is not trusted more than the prior and a viseme never seen *is* the prior. The prior is the
  actor's own mouth at the viseme's canonical (opening, width) quantiles
  (:class:`lipdub.lipsync.visemes.Viseme`): the mean of the library frames nearest to that opening
  and lip-corner width among the frames where the actor speaks, so the shape is always one the actor
  makes. Closed visemes (silence, p b m) are the actor's closed mouth.
* **Trajectory** (:func:`viseme_trajectory`). The dub's viseme segments are blended with the dominance
  functions of Cohen and Massaro (1993, :func:`lipdub.lipsync.visemes.coarticulate`), pauses of the
  dub (measured in its audio) taking part as silence segments; the dub's loudness sets the degree of
  opening: the target's distance from the closed mouth is scaled by ``1 + (L - L_med) / range_db``
  (:func:`loudness_gain`; L the frame's level, L_med the line's median): louder speech, wider jaw, the
  classic audio-visual correlation of the mouth area with the acoustic envelope (Chandrasekaran et al.,
  "The natural statistics of audiovisual speech", PLoS Comput Biol 2009); the mouth is then closed
  exactly on silences of at least ``min_silence_s`` and on p, b, m.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...lipsync.visemes import (
    MIN_CLOSURE_S,
    N_VISEMES,
    PP,
    SIL,
    VISEMES,
    VisemeSegments,
    closure_intervals,
    coarticulate,
)
from .features import FrameAudio

#: Largest loudness factor of the opening (a frame much louder than the line's median level).
MAX_GAIN = 1.5
#: MediaPipe lip corners (outer contour), for the width of a mouth.
LIP_CORNERS = (61, 291)


def lip_width(aligned: np.ndarray) -> np.ndarray:
    """float64 ``(T,)`` lip-corner distance (61-291) of canonical-frame landmarks (inter-ocular units)."""
    a = np.asarray(aligned)
    return np.linalg.norm(a[:, LIP_CORNERS[0], :2] - a[:, LIP_CORNERS[1], :2], axis=1)


def _rank(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Empirical CDF of ``ref`` at ``x`` (0..1)."""
    r = np.sort(np.asarray(ref, np.float64))
    if len(r) == 0:
        return np.full(len(x), 0.5)
    return np.searchsorted(r, np.asarray(x, np.float64), side="right") / len(r)


def frame_labels(times_s: np.ndarray, segments: VisemeSegments, speech: np.ndarray | None = None) -> np.ndarray:
    """Viseme label of every frame: the viseme of the segment covering its time; ``SIL`` (0) on frames
    no segment covers where ``speech`` (bool ``(N,)``) is False; -1 (unknown) elsewhere. int64 ``(N,)``."""
    t = np.asarray(times_s, np.float64)
    out = np.full(len(t), -1, np.int64)
    if speech is not None:
        out[~np.asarray(speech, bool)] = SIL
    if len(segments) == 0 or len(t) == 0:
        return out
    order = np.argsort(segments.start_s, kind="stable")
    starts, ends, vis = segments.start_s[order], segments.end_s[order], segments.viseme[order]
    k = np.searchsorted(starts, t, side="right") - 1
    ok = (k >= 0) & (t < ends[np.maximum(k, 0)])
    out[ok] = vis[k[ok]]
    return out


@dataclass
class ActorVisemes:
    """Per-viseme mouth targets of one actor.

    Attributes:
        targets: float64 ``(N_VISEMES, D)`` descriptor per viseme id.
        prior: float64 ``(N_VISEMES, D)`` the speaker-independent prior realized on this actor.
        counts: int64 ``(N_VISEMES,)`` labelled library frames per viseme (0: target = prior).
        learned: True when the targets come from labelled footage, False for the prior alone.
    """

    targets: np.ndarray
    prior: np.ndarray
    counts: np.ndarray
    learned: bool

    def summary(self) -> dict:
        """Figures for the plan's details."""
        return {"viseme_targets": "actor footage + prior" if self.learned else "speaker-independent prior",
                "visemes_seen": int((self.counts[2:] > 0).sum()), "labelled_frames": int(self.counts.sum())}


def viseme_priors(lib_desc: np.ndarray, lib_opening: np.ndarray, lib_width: np.ndarray, speaking: np.ndarray,
                  closed: np.ndarray, neighbours: int = 5) -> np.ndarray:
    """The prior target of every viseme on this actor: float64 ``(N_VISEMES, D)``.

    For viseme v, the mean descriptor of the ``neighbours`` library frames whose (opening rank, width
    rank) is nearest (Euclidean, width counted half) to v's (``opening``, ``width``) quantiles, ranks
    taken among the ``speaking`` frames (all frames when fewer than 10 speak). Closed visemes: ``closed``.
    """
    d = np.asarray(lib_desc, np.float64)
    sp = np.asarray(speaking, bool)
    ref = sp if sp.sum() >= 10 else np.ones(len(d), bool)
    ro, rw = _rank(lib_opening, np.asarray(lib_opening)[ref]), _rank(lib_width, np.asarray(lib_width)[ref])
    out = np.zeros((N_VISEMES, d.shape[1]))
    k = max(1, min(neighbours, len(d)))
    for v in VISEMES:
        if v.id in (SIL, PP):
            out[v.id] = closed
            continue
        cost = (ro - v.opening) ** 2 + 0.25 * (rw - v.width) ** 2
        cost[~ref] += 1.0  # prefer frames where the actor speaks
        out[v.id] = d[np.argsort(cost)[:k]].mean(axis=0)
    return out


def fit_actor_visemes(lib_desc: np.ndarray, lib_labels: np.ndarray | None, lib_opening: np.ndarray, lib_width: np.ndarray,
                      speaking: np.ndarray, closed: np.ndarray, prior_frames: float = 4.0) -> ActorVisemes:
    """Per-viseme targets of an actor (see the module docstring).

    Args:
        lib_desc: float ``(L, D)`` mouth descriptors of the library frames.
        lib_labels: int ``(L,)`` their viseme labels (:func:`frame_labels`; -1 unknown), or None when the
            source has no phoneme labels (targets = prior).
        lib_opening: float ``(L,)`` ``FaceTrack.mouth_opening`` of the frames; lib_width: float ``(L,)``
            :func:`lip_width`.
        speaking: bool ``(L,)`` frames inside the actor's speech.
        closed: float ``(D,)`` the actor's closed mouth.
        prior_frames: weight of the prior, in frames.
    """
    d = np.asarray(lib_desc, np.float64)
    prior = viseme_priors(d, lib_opening, lib_width, speaking, closed)
    counts = np.zeros(N_VISEMES, np.int64)
    if lib_labels is None:
        return ActorVisemes(prior.copy(), prior, counts, False)
    lab = np.asarray(lib_labels, np.int64)
    targets = prior.copy()
    for v in range(N_VISEMES):
        sel = lab == v
        counts[v] = int(sel.sum())
        if v in (SIL, PP) or counts[v] == 0:
            continue
        targets[v] = (d[sel].sum(axis=0) + prior_frames * prior[v]) / (counts[v] + prior_frames)
    return ActorVisemes(targets, prior, counts, bool(counts[2:].sum() > 0))


@dataclass
class VisemeTrajectory:
    """Planned mouth for the output frames on the phoneme path.

    Attributes:
        target: float32 ``(N, D)``.
        labels: int64 ``(N,)`` viseme label of each output frame (:func:`frame_labels`).
        silent: bool ``(N,)`` closed for a pause of the dub; closure: bool ``(N,)`` closed for p, b, m.
        covered: bool ``(N,)`` frames a phoneme reaches (dominance > 0); elsewhere the caller fills in
            (acoustic target on speech, closed on silence).
        gain: float64 ``(N,)`` the loudness factor of the opening.
    """

    target: np.ndarray
    labels: np.ndarray
    silent: np.ndarray
    closure: np.ndarray
    covered: np.ndarray
    gain: np.ndarray


def loudness_gain(fa: FrameAudio, range_db: float, max_gain: float = MAX_GAIN) -> np.ndarray:
    """The opening factor of every frame from the dub's level: ``1 + (L - L_med) / range_db`` clipped to
    [0, ``max_gain``], with L the frame's level (dBFS over +-50 ms, :attr:`FrameAudio.energy_db`) and
    L_med the median level of the utterance's speech frames; 1 on frames that are not speech and
    everywhere when ``range_db`` is 0. float64 ``(N,)``."""
    out = np.ones(len(fa.energy_db))
    sp = np.flatnonzero(fa.speech)
    if len(sp) and range_db > 0:
        e = np.asarray(fa.energy_db, np.float64)[sp]
        out[sp] = np.clip(1.0 + (e - np.median(e)) / range_db, 0.0, max_gain)
    return out


def closure_frames(times_s: np.ndarray, segments: VisemeSegments, frame_s: float, min_closure_s: float = MIN_CLOSURE_S) -> np.ndarray:
    """bool ``(N,)``: frames (display centres ``times_s``) shown during a lip closure
    (:func:`lipdub.lipsync.visemes.closure_intervals`): a frame counts when at least a quarter of its
    display interval (``frame_s`` long) overlaps the closure."""
    t = np.asarray(times_s, np.float64)
    out = np.zeros(len(t), bool)
    for a, b in closure_intervals(segments, min_closure_s):
        out |= (t >= a - 0.25 * frame_s) & (t <= b + 0.25 * frame_s)
    return out


def viseme_trajectory(visemes: ActorVisemes, seg: VisemeSegments, times_s: np.ndarray, fa: FrameAudio, silent: np.ndarray,
                      closed: np.ndarray, loudness_range_db: float = 10.0) -> VisemeTrajectory:
    """The phoneme-driven target of the output frames (see the module docstring).

    Args:
        visemes: the actor's targets.
        seg: the dub's viseme segments on the output timeline
            (:func:`lipdub.lipsync.visemes.viseme_segments`, stops from their closure:
            :func:`lipdub.lipsync.visemes.stop_closure_starts`).
        times_s: float ``(N,)`` times of the output frames (seconds: the middle of their display
            intervals, :func:`lipdub.media.probe.display_centres`).
        fa: the dub's :class:`FrameAudio` at those frames (speech mask, level).
        silent: bool ``(N,)`` frames in a pause of the dub long enough to close the mouth.
        closed: float ``(D,)`` the closed mouth.
        loudness_range_db: level change (dB) that moves the opening by the whole viseme target
            (:func:`loudness_gain`; 0: the viseme alone sets the opening).
    """
    t = np.asarray(times_s, np.float64)
    frame_s = float(np.median(np.diff(t))) if len(t) > 1 else 0.04
    labels = frame_labels(t, seg, fa.speech)
    # pauses take part in the coarticulation as silence segments, one frame long each
    sil = np.flatnonzero(silent)
    both = VisemeSegments(np.concatenate([seg.start_s, t[sil] - 0.5 * frame_s]), np.concatenate([seg.end_s, t[sil] + 0.5 * frame_s]),
                          np.concatenate([seg.viseme, np.full(len(sil), SIL)]),
                          np.concatenate([seg.alpha, np.full(len(sil), VISEMES[SIL].alpha)]),
                          np.concatenate([seg.closure, np.zeros(len(sil), bool)]), np.concatenate([seg.plosive, np.zeros(len(sil), bool)]),
                          seg.phoneme + ["_"] * len(sil), seg.unknown)
    traj, weight = coarticulate(both, t, visemes.targets)
    covered = coarticulate(seg, t, visemes.targets)[1] > 0
    g = loudness_gain(fa, loudness_range_db)
    target = closed[None, :] + g[:, None] * (traj - closed[None, :])
    closure = closure_frames(t, seg, frame_s)
    target[np.asarray(silent, bool) | closure] = closed
    labels[np.asarray(silent, bool)] = SIL
    target[weight <= 0] = closed
    return VisemeTrajectory(target.astype(np.float32), labels, np.asarray(silent, bool), closure, covered, g)
