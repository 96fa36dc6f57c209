"""Active speaker: which face track each diarized speaker is, from mouth motion against speech.

For each speaker turn and each face track visible during it, the Pearson correlation between the
track's mouth opening and the speech envelope (log RMS of the analysis audio over each video frame)
is taken at the best lag within +-``max_lag_frames`` (a small lag absorbs encoder delay), over the
turn with half a second of context. A speaker is matched to the track whose mouth opening correlates
best, over the whole track, with that speaker's own envelope (their turns; the silence floor
elsewhere), each track going to at most one speaker (Hungarian assignment); a speaker whose best correlation is below
``min_correlation`` is off-screen (None). The same audio-visual correlation is the basis of the
lip-sync score of DESIGN.md section 4; method in the spirit of Chung & Zisserman, "Out of time:
automated lip sync in the wild" (2016), with landmarks instead of a learned embedding.
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
) -> tuple[list[SpeakerMatch], list[TurnMatch]]:
    """Map diarized speakers to face tracks.

    Args:
        analysis: the face analysis of the video.
        turns: diarized speaker turns (seconds).
        audio: float32 mono analysis audio at ``sample_rate_hz``.
        frame_times_s: presentation time of each frame (``analysis.frame_count`` values).

    Returns:
        ``(speaker_matches, turn_matches)``. Confidence is the correlation mapped linearly from
        ``min_correlation`` (0) to 0.6 (1), clipped.
    """
    from scipy.optimize import linear_sum_assignment

    env = speech_envelope_per_frame(audio, sample_rate_hz, frame_times_s)
    t = np.asarray(frame_times_s)

    def conf(r: float) -> float:
        return float(np.clip((r - min_correlation) / (0.6 - min_correlation), 0.0, 1.0))

    pad = max_lag_frames + int(round(0.5 * _fps(t)))  # a little silence around a turn shows the mouth closing
    turn_out: list[TurnMatch] = []
    for turn in turns:
        f0 = max(0, int(np.searchsorted(t, turn.start_s)) - pad)
        f1 = min(len(t), int(np.searchsorted(t, turn.end_s)) + pad)
        best_track, best_r = None, 0.0
        for track in analysis.tracks:
            r = _track_correlation(track, env, f0, f1, max_lag_frames, min_frames)
            if r is not None and r > best_r:
                best_track, best_r = track.id, r
        if best_r < min_correlation:
            best_track = None
        turn_out.append(TurnMatch(turn.start_s, turn.end_s, turn.speaker, best_track, round(best_r, 4), round(conf(best_r), 4)))

    # Per speaker: the envelope of their own speech only (the floor elsewhere), against each track's
    # mouth over the whole track: a track that opens its mouth when this speaker talks and closes it
    # otherwise correlates; one that talks over someone else's turns does not.
    speakers = sorted({t.speaker for t in turns})
    floor = float(np.percentile(env, 5)) if len(env) else 0.0
    corr: dict[str, dict[int, float]] = {}
    for spk in speakers:
        mask = np.zeros(len(t), dtype=bool)
        for turn in turns:
            if turn.speaker == spk:
                mask[int(np.searchsorted(t, turn.start_s)) : int(np.searchsorted(t, turn.end_s))] = True
        own = np.where(mask, env, floor).astype(np.float32)
        corr[spk] = {}
        for track in analysis.tracks:
            r = _track_correlation(track, own, track.start_frame, track.end_frame, max_lag_frames, min_frames)
            if r is not None and mask[track.start_frame : track.end_frame].any():
                corr[spk][track.id] = r
    track_ids = sorted({tid for c in corr.values() for tid in c})
    matches: dict[str, SpeakerMatch] = {s: SpeakerMatch(s, None, 0.0, {k: round(v, 4) for k, v in corr[s].items()}) for s in speakers}
    if speakers and track_ids:
        m = np.array([[corr[s].get(tid, -1.0) for tid in track_ids] for s in speakers])
        rows, cols = linear_sum_assignment(-m)
        for r_i, c_i in zip(rows, cols):
            r = float(m[r_i, c_i])
            if r >= min_correlation:
                s = speakers[r_i]
                matches[s] = SpeakerMatch(s, track_ids[c_i], round(conf(r), 4), matches[s].correlation_by_track)
    return [matches[s] for s in speakers], turn_out
