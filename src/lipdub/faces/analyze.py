"""Face analysis of a whole video: stream the frames, detect + landmark faces, link them into tracks.

Frames are decoded one at a time with PyAV (FFmpeg's libraries) and dropped after use, so memory stays
bounded by the per-track results (about 11 KB per face per frame), not by the video.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..contracts.faces import FaceAnalysis, FaceTrack, Shot
from ..errors import ConfigError, InputError
from ..media.prefetch import prefetched
from .landmarks import FaceLandmarker
from .tracking import ShotTracker, TrackOptions

log = logging.getLogger(__name__)

_LANDMARKER_OPTIONS = {"detect_every", "min_detection_confidence", "crop_scale", "crop_size_px", "redetect_frames"}
_TRACK_OPTIONS = {"max_gap_frames", "min_track_frames", "max_jump", "min_confidence", "min_cutoff_hz", "beta", "d_cutoff_hz"}


def open_video(path: Path):
    import av

    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file", "check the path")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise InputError(f"{path} is not a readable media file ({exc.strerror or type(exc).__name__})",
                         "pass a video that ffmpeg can play") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{path} has no video stream", "pass a video file to analyse faces")
    return container


def to_display(rgb: np.ndarray, rotation_deg: float) -> np.ndarray:
    """Apply a display rotation: PyAV's ``frame.rotation`` is counter-clockwise degrees (FFmpeg's
    display matrix), which ``np.rot90`` (counter-clockwise for k > 0) applies exactly; checked against
    ``ffmpeg`` auto-rotation on a clip with ``rotate=90`` metadata."""
    k = int(round(rotation_deg / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def to_storage(rgb: np.ndarray, rotation_deg: float) -> np.ndarray:
    """Inverse of :func:`to_display`: a display-orientation image back to the stream's stored orientation."""
    k = int(round(rotation_deg / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(rgb, -k)) if k else rgb


def iter_frames(path: str | Path) -> Iterator[tuple[int, np.ndarray]]:
    """Decode the first video stream frame by frame.

    Yields:
        ``(index, rgb)``: 0-based decode index and an RGB ``uint8`` ``(H, W, 3)`` array in display
        orientation (rotation metadata applied).

    Raises:
        InputError: the file is missing, unreadable, has no video stream, or decoding fails.
    """
    for index, _time_s, rgb in iter_timed_frames(path):
        yield index, rgb


def iter_timed_frames(path: str | Path) -> Iterator[tuple[int, float | None, np.ndarray]]:
    """Like :func:`iter_frames` but yields ``(index, time_s, rgb)``; ``time_s`` is the frame's
    presentation time in seconds (None when the stream has no timestamps); variable frame rate
    videos have uneven steps."""
    import av

    path = Path(path)
    container = open_video(path)
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        index = 0
        try:
            for frame in container.decode(stream):
                rgb = frame.to_ndarray(format="rgb24")
                yield index, frame.time, to_display(rgb, getattr(frame, "rotation", 0) or 0)
                index += 1
        except av.error.FFmpegError as exc:
            raise InputError(f"{path}: decoding video failed after {index} frames ({exc.strerror})",
                             "re-export or re-download the file") from None


def _stream_facts(path: Path) -> tuple[str, int, int, int, int]:
    """(fps "num/den", packet count, displayed width, height, rotation_deg) without decoding all frames."""
    container = open_video(path)
    with container:
        stream = container.streams.video[0]
        rate = stream.guessed_rate or stream.average_rate or Fraction(25)
        rate = Fraction(rate)
        n = sum(1 for p in container.demux(stream) if p.size and p.pts is not None)
        container.seek(0)
        first = next(container.decode(video=0), None)
        if first is None:
            raise InputError(f"{path} has no decodable video frames", "re-export the file")
        rotation = int(round((getattr(first, "rotation", 0) or 0) / 90.0)) % 4 * 90
        w, h = first.width, first.height
        if rotation in (90, 270):
            w, h = h, w
    return f"{rate.numerator}/{rate.denominator}", n, w, h, rotation


def _checked_shots(shots: list[Shot] | None, n_packets: int) -> list[Shot]:
    """``shots`` (default: one shot over the video), checked to be non-empty, ordered and disjoint.

    Raises:
        ConfigError: shots that overlap, are not in order, or are empty.
    """
    if shots is None:
        shots = [Shot(0, max(n_packets, 1))]
    shots = list(shots)
    for a, b in zip(shots, shots[1:]):
        if b.start_frame < a.end_frame:
            raise ConfigError("shots overlap or are not in order", "pass shots sorted by start frame, without overlap")
    for s in shots:
        if s.end_frame <= s.start_frame:
            raise ConfigError(f"empty shot {s}", "each shot needs end_frame > start_frame")
    return shots


def _split_options(options: dict, yaw_limit_deg: float, min_face_px: int) -> tuple[TrackOptions, dict]:
    """The tracker's options and the landmarker's keyword options from ``analyze_video``'s ``**options``.

    Raises:
        ConfigError: an unknown option or a value out of range.
    """
    unknown = set(options) - _LANDMARKER_OPTIONS - _TRACK_OPTIONS
    if unknown:
        raise ConfigError(f"unknown face analysis option(s): {', '.join(sorted(unknown))}",
                          f"use: {', '.join(sorted(_LANDMARKER_OPTIONS | _TRACK_OPTIONS))}")
    topt = TrackOptions(yaw_limit_deg=yaw_limit_deg, min_face_px=float(min_face_px),
                        **{k: v for k, v in options.items() if k in _TRACK_OPTIONS})
    topt.validate()
    lopt = {k: v for k, v in options.items() if k in _LANDMARKER_OPTIONS}
    lopt.setdefault("redetect_frames", topt.max_gap_frames)
    return topt, lopt


def _details(n_faces_max: int, elapsed_s: float, n_frames: int, stats: dict) -> dict:
    return {
        "method": "mediapipe BlazeFace full-range (tiled) + Face Mesh 478 (refined) on face crops; "
                  "Hungarian linking; One Euro smoothing; solvePnP pose on 7 canonical-model points",
        "faces_max_per_frame": n_faces_max,
        "processing_s": round(elapsed_s, 3),
        "frames_decoded": n_frames,
        "fps_processed": round(n_frames / elapsed_s, 2) if elapsed_s > 0 else None,
        **stats,
    }


def _track_shots(path: Path, shots: list[Shot], lmk, topt: TrackOptions, fps: float, n_packets: int,
                 progress: Callable[[int, int], None] | None) -> tuple[list[FaceTrack], int, int, bool]:
    """Decode ``path`` once, landmark the frames inside the shots and link them into tracks (one
    :class:`ShotTracker` per shot). Returns ``(tracks, frames decoded, most faces in a frame, stopped
    before the end)``."""
    tracks: list[FaceTrack] = []
    n_faces_max = n_frames = 0
    shot_i = -1
    tracker: ShotTracker | None = None

    def close_shot() -> None:
        if tracker is not None:
            for t in tracker.finish():
                t.id = len(tracks)
                tracks.append(t)

    last_end = shots[-1].end_frame if shots else 0
    stopped_early = False
    ahead = _detected_ahead(path, shots, lmk)
    for index, time_s, rgb, dets in prefetched(ahead):  # decoded and detected ahead, beside Face Mesh
        if index >= last_end:
            stopped_early = True  # nothing left to analyse: stop decoding
            break
        n_frames = index + 1
        while shot_i + 1 < len(shots) and index >= shots[shot_i + 1].start_frame:
            close_shot()
            shot_i += 1
            tracker = ShotTracker(shot_i, fps, rgb.shape[1], rgb.shape[0], topt)
            lmk.reset()
        in_shot = shot_i >= 0 and shots[shot_i].start_frame <= index < shots[shot_i].end_frame
        if in_shot and tracker is not None:
            faces = lmk.process(rgb, dets if lmk.detection_due() else None)
            n_faces_max = max(n_faces_max, len(faces))
            tracker.update(index, faces, time_s)
        if progress is not None:
            progress(n_frames, max(n_packets, n_frames))
    close_shot()
    return tracks, n_frames, n_faces_max, stopped_early


def _detection_frames(shots: list[Shot], every: int) -> set[int]:
    """The frames :class:`FaceLandmarker` runs a full detection pass on: each shot's first frame
    (it is reset there) and every ``every``-th frame after it."""
    return {f for s in shots for f in range(s.start_frame, s.end_frame, every)}


def _detected_ahead(path: Path, shots: list[Shot], lmk: FaceLandmarker):
    """``(index, time_s, rgb, detections)`` of every frame: the full detection pass of the frames due
    one (:func:`_detection_frames`) run by a second landmarker with the same options, in the decoding
    thread (:func:`lipdub.media.prefetch.prefetched`), so it overlaps Face Mesh on earlier frames;
    None on the other frames. Its counts are added to ``lmk.stats``."""
    due = _detection_frames(shots, lmk.detect_every)
    with lmk.twin() as other:
        try:
            for index, time_s, rgb in iter_timed_frames(path):
                yield index, time_s, rgb, (other.detect(rgb) if index in due else None)
        finally:
            for k in ("detection_passes", "detector_runs"):
                lmk.stats[k] += other.stats[k]


def analyze_video(
    path: str | Path,
    shots: list[Shot] | None = None,
    *,
    max_faces: int = 4,
    yaw_limit_deg: float = 45.0,
    min_face_px: int = 48,
    progress: Callable[[int, int], None] | None = None,
    **options,
) -> FaceAnalysis:
    """Face tracks, 478 landmarks, head pose, mouth opening and skip flags of every frame of ``path``.

    Args:
        path: video file (any container/codec FFmpeg decodes); rotation metadata is applied.
        shots: the shots (cuts from PySceneDetect); default one shot spanning the video. Tracks never
            cross a shot boundary; frames outside every shot are not analysed.
        max_faces: most faces per frame.
        yaw_limit_deg: ``SKIP_YAW`` above this |yaw| (degrees).
        min_face_px: ``SKIP_SMALL`` below this box height (pixels); also sets the detector tile size.
        progress: called as ``progress(frames_done, frames_total)`` after each frame.
        **options: ``detect_every``, ``min_detection_confidence``, ``crop_scale``, ``crop_size_px``,
            ``redetect_frames`` (default ``max_gap_frames``; :class:`~lipdub.faces.landmarks.FaceLandmarker`) and ``max_gap_frames``,
            ``min_track_frames``, ``max_jump``, ``min_confidence``, ``min_cutoff_hz``, ``beta``,
            ``d_cutoff_hz`` (:class:`~lipdub.faces.tracking.TrackOptions`).

    Returns:
        A :class:`FaceAnalysis`; tracks are numbered 0, 1, ... in order of shot and start frame;
        ``details`` holds counts and the measured processing rate (``fps_processed``).

    Raises:
        InputError: unreadable file or no video stream.
        ConfigError: unknown option or a value out of range; shots that overlap or are not increasing.
        BackendUnavailable: mediapipe is missing.
    """
    topt, lopt = _split_options(options, yaw_limit_deg, min_face_px)
    path = Path(path)
    fps, n_packets, width, height, rotation = _stream_facts(path)
    fps_f = float(Fraction(fps))
    shots = _checked_shots(shots, n_packets)
    t0 = time.perf_counter()
    with FaceLandmarker(max_faces=max_faces, min_face_px=min_face_px, **lopt) as lmk:
        tracks, n_frames, n_faces_max, stopped_early = _track_shots(path, shots, lmk, topt, fps_f, n_packets, progress)
        stats = dict(lmk.stats)
    elapsed = time.perf_counter() - t0
    if shots and not stopped_early and shots[-1].end_frame > n_frames:
        log.info("%s: shots end at frame %d but the video has %d frames", path, shots[-1].end_frame, n_frames)
    details = _details(n_faces_max, elapsed, n_frames, stats)
    log.info("%s: %d frames, %d tracks, %.1f frames/s", path.name, n_frames, len(tracks), details["fps_processed"] or 0)
    frame_count = max(n_packets, n_frames) if stopped_early else n_frames
    return FaceAnalysis(frame_count=frame_count, fps=fps, width=width, height=height, rotation_deg=rotation,
                        shots=shots, tracks=tracks, details=details)
