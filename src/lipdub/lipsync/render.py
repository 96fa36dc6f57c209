"""Apply lip-sync plans to a video: composite the donor lower faces and encode the result.

Two sequential passes over the source (bounded memory, whatever the video's length):

1. collect the donor faces the plans need (for retrieval: crops of the chosen source frames around
   the lower face, with their landmarks in crop coordinates; generative backends' donor sources
   (:class:`lipdub.contracts.lipsync.DonorSource`) see the frames they asked for, e.g. to run a
   generator in batches);
2. decode every frame again; frames in a plan get the donor's lower face through the compositor,
   every other frame is passed to the encoder as the decoder gave it (same YUV planes, never through
   RGB), so with ``lossless=True`` (x264 qp 0) untouched frames decode bit-identical to the source.

The output keeps the source's frame count, timestamps (VFR included), resolution and storage
orientation (frames are composited in display orientation, then turned back), and its colour: frames
are read into RGB and written back with the source's one Y'CbCr matrix and range
(:func:`lipdub.media.colour.video_colour`), and its colour tags are copied, so composited frames match
the untouched ones and players read the video as they read the source.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import numpy as np

from ..contracts.faces import FaceAnalysis, FaceTrack
from ..contracts.lipsync import Donor, LipsyncPlan
from ..errors import InputError
from ..faces.analyze import to_display, to_storage
from ..media.colour import VideoColour, frame_to_rgb, rgb_to_frame, video_colour
from ..media.probe import probe_video
from .compositor import Compositor

log = logging.getLogger(__name__)


def _crop_box(lm: np.ndarray, width: int, height: int, margin: float = 0.6) -> tuple[int, int, int, int]:
    """Box around a face's landmarks, enlarged by ``margin`` of its size each side, clipped."""
    x0, y0 = lm[:, 0].min(), lm[:, 1].min()
    x1, y1 = lm[:, 0].max(), lm[:, 1].max()
    s = max(x1 - x0, y1 - y0)
    return (int(max(0, x0 - margin * s)), int(max(0, y0 - margin * s)),
            int(min(width, x1 + margin * s)), int(min(height, y1 + margin * s)))


def collect_donors(source: Path, plans: list[tuple[LipsyncPlan, FaceTrack]],
                   colour: VideoColour | None = None) -> dict[tuple[int, int], Donor]:
    """First pass: the donor crops the retrieval plans need, keyed by ``(track id, source frame)``.

    Plans with a donor source (generative backends) are shown the frames they ask for
    (:meth:`DonorSource.observe`, then :meth:`DonorSource.finish`); their sources must be open.
    ``colour``: the matrix frames are read with (None: the source's, :func:`video_colour`).
    """
    import av

    colour = colour or video_colour(probe_video(source))

    need: dict[int, list[tuple[int, FaceTrack]]] = {}
    for plan, track in plans:
        if plan.source_frames is None:
            continue
        for j in np.unique(plan.source_frames):
            need.setdefault(int(j), []).append((track.id, track))
    observers: dict[int, list] = {}
    sources = [plan.donors for plan, _ in plans if plan.donors is not None]
    for src in sources:
        for j in np.asarray(src.frames_to_observe(), np.int64):
            observers.setdefault(int(j), []).append(src)
    donors: dict[tuple[int, int], Donor] = {}
    if need or observers:
        last = max(list(need) + list(observers))
        with av.open(str(source)) as c:
            stream = c.streams.video[0]
            stream.thread_type = "AUTO"
            for i, frame in enumerate(c.decode(stream)):
                if i > last:
                    break
                if i not in need and i not in observers:
                    continue
                rgb = to_display(frame_to_rgb(frame, colour), getattr(frame, "rotation", 0) or 0)
                for src in observers.get(i, ()):
                    src.observe(i, rgb)
                _crop_donors(rgb, i, need.get(i, ()), donors)
    for src in sources:
        src.finish()
    return donors


def _crop_donors(rgb: np.ndarray, i: int, wanted, donors: dict[tuple[int, int], Donor]) -> None:
    """Retrieval donors of frame ``i``: crops around each wanted track's face, landmarks shifted."""
    for tid, track in wanted:
        row = track.index_of(i)
        lm = track.landmarks[row]
        x0, y0, x1, y1 = _crop_box(lm, rgb.shape[1], rgb.shape[0])
        shifted = lm.copy()
        shifted[:, 0] -= x0
        shifted[:, 1] -= y0
        donors[(tid, i)] = Donor(rgb[y0:y1, x0:x1].copy(), shifted, (x0, y0))


def render_lipsync(
    source: Path,
    analysis: FaceAnalysis,
    plans: list[tuple[LipsyncPlan, FaceTrack]],
    output: Path,
    *,
    compositor=None,
    lossless: bool = False,
    crf: int = 17,
    preset: str = "veryfast",
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Composite every planned frame and encode the video stream (H.264, no audio) to ``output``.

    Args:
        source: the source video.
        analysis: its face analysis (landmarks of the target frames).
        plans: ``(plan, track)`` pairs from a lip-sync backend.
        output: an .mp4 (video only; the render stage muxes the audio and subtitles).
        compositor: a :class:`lipdub.lipsync.compositor.Compositor` (default settings when None).
        lossless: x264 qp 0 (untouched frames decode bit-identical to the source).
        crf, preset: x264 quality and speed when not lossless (crf 17 is visually transparent;
            ``veryfast`` keeps 1080p encoding several times faster than ``medium`` on 2 cores).

    Returns:
        Details: frames composited per track, frames total.

    Raises:
        InputError: the source cannot be decoded.
    """
    compositor = compositor or Compositor()
    sources = [plan.donors for plan, _ in plans if plan.donors is not None]
    try:
        for src in sources:
            src.open(source)
        return _render(source, analysis, plans, output, compositor, lossless, crf, preset, progress)
    finally:
        for src in sources:
            src.close()


def _jobs(plans, donors: dict) -> dict[int, list]:
    """Frame -> list of ``(track, donor)`` to composite, in track order; a donor source is asked for
    its donor when the frame is decoded in the second pass.

    Raises:
        InputError: a plan with neither source frames nor a donor source.
    """
    todo: dict[int, list] = {}
    for plan, track in plans:
        if plan.source_frames is None and plan.donors is None and len(plan.frames):
            raise InputError(f"lip-sync plan of track {track.id} has neither source frames nor a donor source",
                             "a lip-sync backend must set LipsyncPlan.source_frames or LipsyncPlan.donors")
        for k, f in enumerate(plan.frames):
            donor = donors[(track.id, int(plan.source_frames[k]))] if plan.source_frames is not None else plan.donors
            todo.setdefault(int(f), []).append((track, donor))
    return todo


def _render(source, analysis, plans, output, compositor, lossless, crf, preset, progress) -> dict:
    import av

    colour = video_colour(probe_video(source))
    donors = collect_donors(source, plans, colour)
    todo = _jobs(plans, donors)
    cut_frames = {s.start_frame for s in analysis.shots}
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.stem}.tmp{output.suffix}")
    done: dict[int, int] = {}
    total = analysis.frame_count
    try:
        src = av.open(str(source))
    except av.error.FFmpegError as exc:
        raise InputError(f"cannot decode {source} ({exc})", "check the file plays") from None
    with src, av.open(str(tmp), "w") as out:
        istream = src.streams.video[0]
        istream.thread_type = "AUTO"
        ostream = out.add_stream("libx264", rate=istream.guessed_rate or istream.average_rate or 25)
        ostream.width = istream.codec_context.width
        ostream.height = istream.codec_context.height
        odd = ostream.width % 2 or ostream.height % 2  # x264 cannot subsample chroma of an odd size ("width not divisible by 2")
        ostream.pix_fmt = "yuv444p" if odd or (lossless and istream.codec_context.pix_fmt == "yuv444p") else "yuv420p"
        ostream.time_base = istream.time_base
        ostream.codec_context.time_base = istream.time_base
        ostream.options = {"qp": "0", "preset": "ultrafast"} if lossless else {"crf": str(crf), "preset": preset}
        icc, occ = istream.codec_context, ostream.codec_context
        occ.color_primaries, occ.color_trc, occ.colorspace = icc.color_primaries, icc.color_trc, icc.colorspace
        occ.color_range = icc.color_range
        for i, frame in enumerate(src.decode(istream)):
            pts = frame.pts
            if i in cut_frames:
                compositor.reset()
            jobs = todo.get(i)
            composited = False
            if jobs:
                rotation = getattr(frame, "rotation", 0) or 0
                rgb = to_display(frame_to_rgb(frame, colour), rotation)
                for track, donor in jobs:
                    row = track.index_of(i)
                    if not isinstance(donor, Donor):  # a DonorSource
                        donor = donor.donor(i, rgb)
                        if donor is None:  # e.g. past the end of an external tool's output
                            continue
                    d_rgb, d_lm = donor.as_frame(rgb)
                    rgb = compositor.composite(rgb, track.landmarks[row], d_rgb, d_lm, key=track.id,
                                               donor_is_frame=donor.offset is not None)
                    done[track.id] = done.get(track.id, 0) + 1
                    composited = True
            if composited:
                new = rgb_to_frame(to_storage(rgb, rotation), ostream.pix_fmt, colour)
                new.pts = pts
                new.time_base = istream.time_base
                frame = new
            elif frame.format.name != ostream.pix_fmt:
                fpts = frame.pts
                frame = frame.reformat(format=ostream.pix_fmt)
                frame.pts = fpts
            frame.pict_type = av.video.frame.PictureType.NONE
            for pkt in ostream.encode(frame):
                out.mux(pkt)
            if progress and i % 10 == 0:
                progress(i + 1, total)
        for pkt in ostream.encode():
            out.mux(pkt)
    tmp.replace(output)
    if progress:
        progress(total, total)
    return {"composited_frames": {str(k): v for k, v in done.items()}, "frames": total}
