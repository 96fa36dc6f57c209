"""Active speaker: which face track each diarized speaker is, from mouth motion against speech.

For each speaker turn and each face track visible during it, the Pearson correlation between the
track's mouth opening and the speech envelope (log RMS of the analysis audio over each video frame)
is taken at the best lag within +-``max_lag_frames`` (a small lag absorbs encoder delay), over the
turn with half a second of context (the per-turn matches drawn by ``lipdub faces``).

A speaker is matched to a track by two cues, each a correlation in [-1, 1], averaged where both exist:

* sync: the track's mouth opening against the speaker's envelope over the speaker's own turns only,
  at the best lag (the same audio-visual correlation as the lip-sync score of DESIGN.md section 4;
  in the spirit of Chung & Zisserman, "Out of time: automated lip sync in the wild", 2016, with
  landmarks instead of a learned embedding);
* activity: the track's mouth motion (``|d opening / d frame|`` averaged over ``motion_window_s``)
  against the speaker's turns (1 in them, 0 elsewhere), over the whole track: a face's mouth moves
  while its owner speaks and rests while others speak (visual voice activity, as in Sodoyer et al.,
  "An analysis of visual speech information applied to voice activity detection", ICASSP 2006).
  Undefined when the speaker talks over the whole track (then sync alone decides).

Neither cue reads the level of the mouth opening across turns: a listener who rests with parted
lips (measured on a shared clip: held at 0.13 inter-ocular distance against 0.07 on average while
speaking) would otherwise correlate with whoever speaks while they listen. Each track goes to at
most one speaker and each speaker to at most one track per shot (Hungarian assignment on the score,
shot by shot: after a cut the same person is a new track); a speaker whose best score is below
``min_correlation`` in every shot is off-screen (None).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..contracts.diarize import SpeakerTurn
from ..contracts.faces import SKIP_NO_FACE, FaceAnalysis, SpeakerMatch


@dataclass(frozen=True)
class TurnMatch:
    """One speaker turn and the track speaking in it (None: off-screen), with its correlation."""

    start_s: float
    end_s: float
    speaker: str
    track: int | None
    correlation: float
    confidence: float


def speech_envelope_per_frame(audio: np.ndarray, sample_rate_hz: int, frame_times_s: np.ndarray) -> np.ndarray:
    """Log-RMS (dB) of ``audio`` (float32 mono) over each video frame's span.

    ``frame_times_s``: float64 ``(n_frames,)`` presentation times; frame i spans
    ``[t_i, t_{i+1})`` (the last one the median frame duration). Returns float32 ``(n_frames,)``.
    """
    t = np.asarray(frame_times_s, dtype=np.float64)
    dur = np.median(np.diff(t)) if len(t) > 1 else 0.04
    ends = np.append(t[1:], t[-1] + dur) if len(t) else t
    out = np.empty(len(t), dtype=np.float32)
    for i, (a, b) in enumerate(zip(t, ends)):
        seg = audio[max(0, int(a * sample_rate_hz)) : max(0, int(b * sample_rate_hz))]
        rms = float(np.sqrt(np.mean(seg.astype(np.float64) ** 2))) if len(seg) else 0.0
        out[i] = 20 * np.log10(max(rms, 1e-5))
    return out


def lagged_correlation(x: np.ndarray, y: np.ndarray, max_lag: int) -> tuple[float, int]:
    """Highest Pearson correlation of ``x[i]`` with ``y[i + lag]`` over ``|lag| <= max_lag``.

    Returns ``(correlation, lag)``; ``(0.0, 0)`` when too short or constant.
    """
    best, best_lag = 0.0, 0
    for lag in range(-max_lag, max_lag + 1):
        a = x[max(0, -lag) : len(x) - max(0, lag)]
        b = y[max(0, lag) : len(y) - max(0, -lag)]
        if len(a) < 8 or np.std(a) < 1e-6 or np.std(b) < 1e-6:
            continue
        r = float(np.corrcoef(a, b)[0, 1])
        if r > best:
            best, best_lag = r, lag
    return best, best_lag


def masked_lagged_correlation(x: np.ndarray, y: np.ndarray, mask: np.ndarray, max_lag: int) -> float:
    """Highest Pearson correlation of ``x[i]`` with ``y[i + lag]`` over the indices ``i`` where
    ``mask`` is True (and ``i + lag`` is inside ``y``), ``|lag| <= max_lag``; 0.0 when fewer than 8
    pairs or a constant side."""
    idx = np.flatnonzero(mask)
    best = 0.0
    for lag in range(-max_lag, max_lag + 1):
        j = idx + lag
        ok = (j >= 0) & (j < len(y))
        a, b = x[idx[ok]], y[j[ok]]
        if len(a) < 8 or np.std(a) < 1e-6 or np.std(b) < 1e-6:
            continue
        best = max(best, float(np.corrcoef(a, b)[0, 1]))
    return best


def mouth_motion(opening: np.ndarray, window: int) -> np.ndarray:
    """float64 ``(T,)``: ``|opening[i] - opening[i - 1]|`` averaged over a centred ``window`` of frames."""
    o = np.asarray(opening, dtype=np.float64)
    d = np.abs(np.diff(o, prepend=o[:1]))
    w = max(1, int(window))
    return np.convolve(np.pad(d, (w // 2, w - 1 - w // 2), mode="edge"), np.ones(w) / w, mode="valid")


def _speaker_cues(track, env: np.ndarray, mask: np.ndarray, max_lag: int, min_frames: int, window: int) -> dict | None:
    """``{"sync", "activity"}`` of one speaker (``mask``: their turns, ``env``: the envelope) and a
    track, over the frames where the face was measured; None when the speaker has fewer than
    ``min_frames`` measured frames of the track in their turns."""
    a, b = track.start_frame, track.end_frame
    valid = (track.skip & SKIP_NO_FACE) == 0
    own = mask[a:b]
    if (own & valid).sum() < min_frames:
        return None
    sync = masked_lagged_correlation(track.mouth_opening.astype(np.float64), env[a:b], own & valid, max_lag)
    motion, turns = mouth_motion(track.mouth_opening, window)[valid], own[valid].astype(np.float64)
    activity = None
    if np.std(turns) > 0 and np.std(motion) > 1e-9:
        activity = float(np.corrcoef(motion, turns)[0, 1])
    return {"sync": round(sync, 4), "activity": None if activity is None else round(activity, 4)}


def _fps(frame_times_s: np.ndarray) -> float:
    return float(1.0 / np.median(np.diff(frame_times_s))) if len(frame_times_s) > 1 else 25.0


def _track_correlation(track, env: np.ndarray, f0: int, f1: int, max_lag: int, min_frames: int) -> float | None:
    """Lagged correlation of a track's mouth opening with ``env`` over frames ``[f0, f1)`` where the
    face was measured (not bridged); None when fewer than ``min_frames`` such frames."""
    a, b = max(f0, track.start_frame), min(f1, track.end_frame)
    if b - a < min_frames:
        return None
    rows = slice(a - track.start_frame, b - track.start_frame)
    valid = (track.skip[rows] & SKIP_NO_FACE) == 0
    if valid.sum() < min_frames:
        return None
    r, _ = lagged_correlation(track.mouth_opening[rows][valid], env[a:b][valid], max_lag)
    return r


def _turn_matches(analysis: FaceAnalysis, turns: list[SpeakerTurn], env: np.ndarray, t: np.ndarray, max_lag: int,
                  min_frames: int, min_correlation: float, conf) -> list[TurnMatch]:
    """Per turn: the track whose mouth opening follows the envelope best over the turn and half a second around it."""
    pad = max_lag + int(round(0.5 * _fps(t)))  # a little silence around a turn shows the mouth closing
    out: list[TurnMatch] = []
    for turn in turns:
        f0 = max(0, int(np.searchsorted(t, turn.start_s)) - pad)
        f1 = min(len(t), int(np.searchsorted(t, turn.end_s)) + pad)
        best_track, best_r = None, 0.0
        for track in analysis.tracks:
            r = _track_correlation(track, env, f0, f1, max_lag, min_frames)
            if r is not None and r > best_r:
                best_track, best_r = track.id, r
        if best_r < min_correlation:
            best_track = None
        out.append(TurnMatch(turn.start_s, turn.end_s, turn.speaker, best_track, round(best_r, 4), round(conf(best_r), 4)))
    return out


def match_speakers(
    analysis: FaceAnalysis,
    turns: list[SpeakerTurn],
    audio: np.ndarray,
    sample_rate_hz: int,
    frame_times_s: np.ndarray,
    *,
    max_lag_frames: int = 2,
    min_correlation: float = 0.15,
    min_frames: int = 10,
    motion_window_s: float = 0.5,
) -> tuple[list[SpeakerMatch], list[TurnMatch]]:
    """Map diarized speakers to face tracks (see the module docstring for the two cues).

    Args:
        analysis: the face analysis of the video.
        turns: diarized speaker turns (seconds).
        audio: float32 mono analysis audio at ``sample_rate_hz``.
        frame_times_s: presentation time of each frame (``analysis.frame_count`` values).
        motion_window_s: the span mouth motion is averaged over (about two syllables).

    Returns:
        ``(speaker_matches, turn_matches)``. Confidence is the score mapped linearly from
        ``min_correlation`` (0) to 0.6 (1), clipped.
    """
    env = speech_envelope_per_frame(audio, sample_rate_hz, frame_times_s)
    t = np.asarray(frame_times_s)

    def conf(r: float) -> float:
        return float(np.clip((r - min_correlation) / (0.6 - min_correlation), 0.0, 1.0))

    turn_out = _turn_matches(analysis, turns, env, t, max_lag_frames, min_frames, min_correlation, conf)

    # Per speaker: sync over their own turns, mouth activity against their turns over the whole track
    speakers = sorted({t.speaker for t in turns})
    floor = float(np.percentile(env, 5)) if len(env) else 0.0
    window = int(round(motion_window_s * _fps(t)))
    corr: dict[str, dict[int, float]] = {}
    cues: dict[str, dict[int, dict]] = {}
    for spk in speakers:
        mask = np.zeros(len(t), dtype=bool)
        for turn in turns:
            if turn.speaker == spk:
                mask[int(np.searchsorted(t, turn.start_s)) : int(np.searchsorted(t, turn.end_s))] = True
        own = np.where(mask, env, floor).astype(np.float32)
        corr[spk], cues[spk] = {}, {}
        for track in analysis.tracks:
            c = _speaker_cues(track, own, mask, max_lag_frames, min_frames, window)
            if c is not None:
                cues[spk][track.id] = c
                corr[spk][track.id] = float(np.mean([v for v in c.values() if v is not None]))
    return _assign(analysis, speakers, corr, cues, min_correlation, conf), turn_out


def _assign(analysis: FaceAnalysis, speakers: list[str], corr: dict[str, dict[int, float]], cues: dict[str, dict[int, dict]],
            min_correlation: float, conf) -> list[SpeakerMatch]:
    """Hungarian assignment of speakers to tracks in each shot (a person cut to is a new track in
    every shot: each speaker gets at most one track per shot, each track at most one speaker)."""
    from scipy.optimize import linear_sum_assignment

    won: dict[str, list[tuple[int, float]]] = {s: [] for s in speakers}
    for shot in sorted({t.shot for t in analysis.tracks}):
        track_ids = sorted(t.id for t in analysis.tracks if t.shot == shot and any(t.id in corr[s] for s in speakers))
        if not speakers or not track_ids:
            continue
        m = np.array([[corr[s].get(tid, -1.0) for tid in track_ids] for s in speakers])
        rows, cols = linear_sum_assignment(-m)
        for r_i, c_i in zip(rows, cols):
            if float(m[r_i, c_i]) >= min_correlation:
                won[speakers[r_i]].append((track_ids[c_i], float(m[r_i, c_i])))
    out = []
    for s in speakers:
        ids = [tid for tid, _ in won[s]]
        confidence = round(float(np.mean([conf(r) for _, r in won[s]])), 4) if ids else 0.0
        out.append(SpeakerMatch(s, ids[0] if ids else None, confidence, {k: round(v, 4) for k, v in corr[s].items()}, cues[s], ids))
    return out


