"""``lipdub faces -o overlay.mp4``: the face analysis drawn on the video, to check it at a glance.

Per face: the box (green = may be lip-synced, orange = skipped, with the reason), the track id, the
smoothed landmarks (lips and eyes brighter), yaw/pitch/roll, the mouth opening, and SPEAKING with the
diarized speaker when the active-speaker match says this track speaks on this frame. Shot cuts are
flagged in the corner. Drawn with OpenCV, encoded H.264 with PyAV.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

from ..contracts.faces import SKIP_REASONS, FaceAnalysis
from .speakers import TurnMatch

LIPS = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308,
        185, 40, 39, 37, 0, 267, 269, 270, 409, 191, 80, 81, 82, 13, 312, 311, 310, 415]


def speaking_frames(turns: list[TurnMatch], frame_times_s: np.ndarray) -> dict[int, dict[int, str]]:
    """frame -> {track id: speaker} for every frame inside a turn matched to a track."""
    out: dict[int, dict[int, str]] = {}
    t = np.asarray(frame_times_s)
    for turn in turns:
        if turn.track is None:
            continue
        for f in range(int(np.searchsorted(t, turn.start_s)), int(np.searchsorted(t, turn.end_s))):
            out.setdefault(f, {})[turn.track] = turn.speaker
    return out


def draw_frame(rgb: np.ndarray, frame: int, analysis: FaceAnalysis, speaking: dict[int, str]) -> np.ndarray:
    """Return a copy of ``rgb`` (H, W, 3 uint8) with the analysis of ``frame`` drawn on it."""
    import cv2

    img = np.ascontiguousarray(rgb.copy())
    h, w = img.shape[:2]
    scale = max(0.4, min(w, h) / 720)
    thick = max(1, int(round(2 * scale)))
    cuts = {s.start_frame for s in analysis.shots[1:]}
    if frame in cuts:
        cv2.putText(img, "CUT", (10, int(40 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 0, 0), thick)
    for track in analysis.tracks_at(frame):
        i = track.index_of(frame)
        skip = int(track.skip[i])
        color = (40, 220, 40) if skip == 0 else (255, 150, 0)
        x0, y0, x1, y1 = (int(v) for v in track.boxes[i])
        cv2.rectangle(img, (x0, y0), (x1, y1), color, thick)
        lm = track.landmarks[i]
        for p in lm[::3]:
            cv2.circle(img, (int(p[0]), int(p[1])), max(1, thick // 2), (200, 200, 255), -1)
        for k in LIPS:
            cv2.circle(img, (int(lm[k, 0]), int(lm[k, 1])), thick, (255, 60, 200), -1)
        yaw, pitch, roll = track.pose_deg[i]
        lines = [f"track {track.id}", f"yaw {yaw:+.0f} pitch {pitch:+.0f} roll {roll:+.0f}", f"mouth {track.mouth_opening[i]:.2f}"]
        if skip:
            lines.append("skip: " + ", ".join(r for bit, r in SKIP_REASONS.items() if skip & bit))
        if track.id in speaking:
            lines.append(f"SPEAKING ({speaking[track.id]})")
        y = y0 - 8
        for line in reversed(lines):
            cv2.putText(img, line, (x0, max(12, y)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (255, 255, 255), thick + 2)
            cv2.putText(img, line, (x0, max(12, y)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale,
                        (255, 230, 0) if line.startswith("SPEAKING") else color, thick)
            y -= int(18 * scale)
    return img


def write_overlay(
    frames: Iterable[tuple[int, np.ndarray]],
    analysis: FaceAnalysis,
    turns: list[TurnMatch],
    frame_times_s: np.ndarray,
    output: Path,
) -> Path:
    """Encode the overlay video (H.264, yuv420p, the source's average frame rate) to ``output``."""
    import av

    speaking = speaking_frames(turns, frame_times_s)
    t = np.asarray(frame_times_s)
    rate = Fraction(len(t) - 1, 1) / Fraction(float(t[-1] - t[0])).limit_denominator(100000) if len(t) > 1 else Fraction(analysis.fps)
    rate = rate.limit_denominator(1001)
    output.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(output), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        sized = False
        for frame, rgb in frames:
            img = draw_frame(rgb, frame, analysis, speaking.get(frame, {}))
            if not sized:  # yuv420p needs even dimensions
                stream.width, stream.height = img.shape[1] // 2 * 2, img.shape[0] // 2 * 2
                sized = True
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[: stream.height, : stream.width]), format="rgb24")
            for pkt in stream.encode(vf):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    return output
