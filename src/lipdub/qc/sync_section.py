"""The lip-sync part of the quality report: the dub's landmark sync score beside the source reference
and the no-lip-sync floor, the series for the plots, the worst-sync frames and the per-segment scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..contracts.faces import SKIP_NO_FACE
from ..errors import InputError
from .model import Check, judge
from .sync import MelAudio, predicted_mouth, sync_score
from .thresholds import Thresholds
from .visual import iter_selected_frames

N_WORST_FRAMES = 6
LOCAL_WINDOW_S = 1.0  # window of the local sync correlation used to find the worst frames
RATE_HZ = 16000


@dataclass
class SyncInputs:
    """What the sync figures are measured on: the output's faces and frame times, the speech of the
    dub (16 kHz), and, when the source is known, its faces, frame times and speech."""

    output: Path
    out_analysis: Any
    out_times: np.ndarray
    speech16: np.ndarray
    src_analysis: Any = None
    src_times: np.ndarray | None = None
    src16: np.ndarray | None = None
    face: int | None = None
    mels: dict = field(default_factory=dict, repr=False)  # the log-mel of speech16 / src16, made once (:func:`mel`)


def mel(inp: SyncInputs, which: str) -> MelAudio:
    """The :class:`~lipdub.qc.sync.MelAudio` of ``inp.speech16`` or ``inp.src16`` (``which``), made
    on first use: every score of the report (per track, per line, each floor) reads the same one."""
    audio = getattr(inp, which)
    if which not in inp.mels or inp.mels[which][0] is not audio:  # made again if the audio was replaced
        inp.mels[which] = (audio, MelAudio.of(audio, RATE_HZ))
    return inp.mels[which][1]


def envelope_db(audio: np.ndarray, sample_rate_hz: int, frame_times_s: np.ndarray) -> np.ndarray:
    """RMS level (dBFS) of the audio over each video frame's span, float ``(n_frames,)``."""
    t = np.asarray(frame_times_s)
    dur = float(np.median(np.diff(t))) if len(t) > 1 else 0.04
    out = np.full(len(t), -100.0)
    for i, ti in enumerate(t):
        seg = audio[int(ti * sample_rate_hz):int((ti + dur) * sample_rate_hz)]
        if len(seg):
            out[i] = 10 * np.log10(float(np.mean(seg.astype(np.float64) ** 2)) + 1e-10)
    return out


def _local_correlation(a: np.ndarray, b: np.ndarray, half: int) -> np.ndarray:
    out = np.full(len(a), np.nan)
    for i in range(len(a)):
        sa, sb = a[max(0, i - half):i + half + 1], b[max(0, i - half):i + half + 1]
        ok = np.isfinite(sa) & np.isfinite(sb)
        if ok.sum() >= 5 and np.std(sa[ok]) > 1e-9 and np.std(sb[ok]) > 1e-9:
            out[i] = np.corrcoef(sa[ok], sb[ok])[0, 1]
    return out


def main_track(analysis, track_id: int | None):
    """The face track to score: ``track_id``, else the track on screen longest (None: no face).

    Raises:
        InputError: ``track_id`` is not a track of ``analysis``.
    """
    if analysis is None or not analysis.tracks:
        return None
    if track_id is not None:
        t = next((t for t in analysis.tracks if t.id == track_id), None)
        if t is None:
            raise InputError(f"face track {track_id} not found", f"use one of {[t.id for t in analysis.tracks]}")
        return t
    return max(analysis.tracks, key=lambda t: len(t.frames))


def _thumbnails(video: Path, track, frames: list[int], times: np.ndarray, size_px: int = 200) -> list[tuple[int, float, bytes]]:
    import cv2

    out = {}
    for idx, rgb in iter_selected_frames(video, set(frames)):
        r = track.index_of(idx)
        x0, y0, x1, y1 = track.boxes[r]
        pad = 0.25 * (x1 - x0)
        h, w = rgb.shape[:2]
        crop = rgb[int(max(0, y0 - pad)):int(min(h, y1 + pad)), int(max(0, x0 - pad)):int(min(w, x1 + pad))]
        if crop.size == 0:
            continue
        scale = size_px / max(crop.shape[:2])
        crop = cv2.resize(crop, (max(1, int(crop.shape[1] * scale)), max(1, int(crop.shape[0] * scale))), interpolation=cv2.INTER_AREA)
        ok, png = cv2.imencode(".png", crop[:, :, ::-1])
        if ok:
            out[idx] = png.tobytes()
    return [(f, float(times[f]), out[f]) for f in frames if f in out]


def _track_floor(inp: SyncInputs, out_track) -> dict | None:
    """The no-lip-sync floor of one output track: the source track over the same frames (the most
    overlap) scored against the dub's speech; None without a source analysis of the same frames."""
    an = inp.src_analysis
    if an is None or inp.src_times is None or an.frame_count != inp.out_analysis.frame_count:
        return None
    overlap = lambda t: max(0, min(t.end_frame, out_track.end_frame) - max(t.start_frame, out_track.start_frame))  # noqa: E731
    src = max(an.tracks, key=overlap, default=None)
    if src is None or overlap(src) == 0:
        return None
    v = (src.skip & SKIP_NO_FACE) == 0
    return sync_score(src.mouth_opening, mel(inp, "speech16"), RATE_HZ, inp.src_times[src.start_frame:src.end_frame], valid=v,
                      track=src.id).as_dict()


def _scores(inp: SyncInputs, track, sync: dict) -> Any:
    """The dub's score, one per other long track (each with the floor of the source track over the
    same frames: after a cut every shot has its own track), and the source reference and floor."""
    valid = (track.skip & SKIP_NO_FACE) == 0
    times = inp.out_times[track.start_frame:track.end_frame]
    dub_s = sync_score(track.mouth_opening, mel(inp, "speech16"), RATE_HZ, times, valid=valid, track=track.id)
    sync["dub"] = dub_s.as_dict()
    sync["per_track"] = []
    for t in sorted(inp.out_analysis.tracks, key=lambda t: t.id != track.id):
        if len(t.frames) >= 40 or t.id == track.id:
            v = (t.skip & SKIP_NO_FACE) == 0
            row = dub_s.as_dict() if t.id == track.id else sync_score(
                t.mouth_opening, mel(inp, "speech16"), RATE_HZ, inp.out_times[t.start_frame:t.end_frame], valid=v, track=t.id).as_dict()
            row["floor"] = _track_floor(inp, t)
            sync["per_track"].append(row)
    src_track = main_track(inp.src_analysis, inp.face) if inp.src_analysis is not None else None
    if src_track is not None:
        sv = (src_track.skip & SKIP_NO_FACE) == 0
        st = inp.src_times[src_track.start_frame:src_track.end_frame]
        sync["reference"] = sync_score(src_track.mouth_opening, mel(inp, "src16"), RATE_HZ, st, valid=sv, track=src_track.id).as_dict()
        sync["floor"] = sync_score(src_track.mouth_opening, mel(inp, "speech16"), RATE_HZ, st, valid=sv, track=src_track.id).as_dict()
    return dub_s


def _series_and_worst(inp: SyncInputs, track, dub_s, sync: dict) -> list[tuple[int, float, bytes]]:
    """Series for the plot, and the worst-sync frames (lowest local correlation while speaking)."""
    valid = (track.skip & SKIP_NO_FACE) == 0
    times = inp.out_times[track.start_frame:track.end_frame]
    env = envelope_db(inp.speech16, RATE_HZ, times)
    pred = predicted_mouth(track.mouth_opening, valid, mel(inp, "speech16"), RATE_HZ, times, dub_s.offset_frames)
    frame_s = max(1e-3, float(np.median(np.diff(times)))) if len(times) > 1 else None
    local = _local_correlation(np.where(valid, track.mouth_opening, np.nan), pred,
                               max(3, int(LOCAL_WINDOW_S / frame_s / 2)) if frame_s else 3)
    speech = env > (np.max(env) - 30)
    sync["series"] = {"frame": track.frames.tolist(), "time_s": np.round(times, 4).tolist(),
                      "mouth_opening": np.round(track.mouth_opening.astype(float), 4).tolist(),
                      "predicted_mouth_opening": np.round(pred, 4).tolist(), "speech_envelope_dbfs": np.round(env, 2).tolist(),
                      "local_correlation": np.round(local, 3).tolist()}
    cand = [i for i in np.argsort(np.where(np.isfinite(local) & speech & valid, local, np.inf)) if np.isfinite(local[i]) and speech[i] and valid[i]]
    picked: list[int] = []
    min_gap = max(1, int(LOCAL_WINDOW_S / frame_s)) if frame_s else 1
    for i in cand:
        if all(abs(i - j) >= min_gap for j in picked):
            picked.append(int(i))
        if len(picked) == N_WORST_FRAMES:
            break
    frames = sorted(int(track.frames[i]) for i in picked)
    sync["worst_frames"] = [{"frame": f, "time_s": round(float(inp.out_times[f]), 3), "local_correlation": float(local[f - track.start_frame])}
                            for f in frames]
    return _thumbnails(inp.output, track, frames, inp.out_times)


def _per_segment(inp: SyncInputs, track, script, language: str) -> list[dict]:
    """The sync score over each dubbed line (+-0.5 s), for lines with at least 30 frames of the face."""
    valid = (track.skip & SKIP_NO_FACE) == 0
    times = inp.out_times[track.start_frame:track.end_frame]
    rows = []
    for s in script.segments:
        tl = s.targets.get(language)
        if tl is None or tl.fit is None:
            continue
        a, b = tl.fit.placed_start_s - 0.5, tl.fit.placed_end_s + 0.5
        sel = (times >= a) & (times < b)
        if sel.sum() < 30:
            rows.append({"segment": s.id, "score": None, "note": "fewer than 30 frames of the face"})
            continue
        sc = sync_score(track.mouth_opening[sel], mel(inp, "speech16"), RATE_HZ, times[sel], valid=valid[sel], folds=3, max_lag_frames=8, track=track.id)
        rows.append({"segment": s.id, "offset_frames": sc.offset_frames, "peak_correlation": sc.peak_correlation,
                     "confidence": sc.confidence, "n_frames": sc.n_frames})
    return rows


def _sync_checks(dub_s, sync: dict, th: Thresholds) -> list[Check]:
    checks = []
    conf_check = judge("sync", "sync_confidence", "lip-sync confidence (landmark score)", dub_s.confidence, th.sync_min_confidence)
    checks.append(conf_check)
    note = "" if conf_check.verdict == "pass" else "confidence too low to trust the offset"
    floor = sync.get("floor")
    # the floor pairs the untouched source mouth with the dub audio (they share only the
    # speech/silence timing); unless the video is the source's own (no lip-sync: floor == dub),
    # a dub whose mouth does not follow its audio better than that has no trustworthy offset
    same = floor is not None and np.allclose(floor["correlation_by_lag"], dub_s.correlation_by_lag, atol=1e-3)
    if floor is not None and not same:
        over = judge("sync", "sync_confidence_over_floor", "confidence above the no-lip-sync floor's",
                     dub_s.confidence - floor["confidence"], th.sync_confidence_over_floor)
        checks.append(over)
        if over.verdict != "pass" and not note:
            note = (f"the no-lip-sync floor reaches confidence {floor['confidence']:.2f}: the dub's mouth does not follow "
                    "its audio clearly enough to trust the offset")
    off = judge("sync", "sync_offset_frames", f"AV offset {dub_s.offset_frames:+d} frames (landmark score)", abs(dub_s.offset_frames), th.sync_offset_frames)
    if note and off.verdict == "fail":
        off.verdict, off.note = "warn", note
    checks.append(off)
    if "floor" in sync:
        checks.append(judge("sync", "sync_vs_floor", "dub peak correlation minus the no-lip-sync floor's",
                            dub_s.peak_correlation - sync["floor"]["peak_correlation"], th.sync_vs_floor))
    return checks


def sync_section(inp: SyncInputs, sync: dict, th: Thresholds, script=None, language: str | None = None
                 ) -> tuple[Any, list[Check], list[tuple[int, float, bytes]]]:
    """Fill ``sync`` (report.json's ``sync`` group) and judge it.

    Returns:
        ``(track, checks, thumbnails)``: the scored output track (None: no face), its checks and the
        PNG thumbnails of the worst-sync frames.
    """
    track = main_track(inp.out_analysis, inp.face)
    if track is None:
        sync["note"] = "no face in the output: lip sync not measured"
        return None, [], []
    dub_s = _scores(inp, track, sync)
    thumbs = _series_and_worst(inp, track, dub_s, sync)
    if script is not None and language is not None:
        sync["per_segment"] = _per_segment(inp, track, script, language)
    return track, _sync_checks(dub_s, sync, th), thumbs
