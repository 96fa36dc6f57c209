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
import os
import queue
import tempfile
import threading
from collections.abc import Mapping
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

QUEUE_FRAMES = 8  # frames in flight between the decoder, the compositor and the encoder (bounded memory)
#: x264 settings of a lip-synced stream (README, Benchmarks: ``bench/encoder_presets.py``): as close to
#: the source as x264 ``medium`` at CRF 17 (SSIM), for a fraction of its encode time.
DEFAULT_PRESET, DEFAULT_CRF = "superfast", 16


def _crop_box(lm: np.ndarray, width: int, height: int, margin: float = 0.6) -> tuple[int, int, int, int]:
    """Box around a face's landmarks, enlarged by ``margin`` of its size each side, clipped."""
    x0, y0 = lm[:, 0].min(), lm[:, 1].min()
    x1, y1 = lm[:, 0].max(), lm[:, 1].max()
    s = max(x1 - x0, y1 - y0)
    return (int(max(0, x0 - margin * s)), int(max(0, y0 - margin * s)),
            int(min(width, x1 + margin * s)), int(min(height, y1 + margin * s)))


class DonorStore(Mapping):
    """The retrieval donors of a render, ``(track id, source frame) -> Donor``, kept in an unlinked
    temporary file instead of memory: a long video's plans can ask for thousands of face crops (a
    1080p crop is about 2 MB), so only their index is held; each crop is read back (``os.pread``, the
    page cache serving repeated reads) when a frame composites it. Closed with :meth:`close`."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="lipdub_donors_")
        self._index: dict[tuple[int, int], tuple[int, tuple[int, ...], np.ndarray, tuple[int, int]]] = {}
        self._end = 0

    def add(self, key: tuple[int, int], donor: Donor) -> None:
        rgb = np.ascontiguousarray(donor.rgb, np.uint8)
        self._file.seek(self._end)
        self._file.write(rgb.tobytes())
        self._index[key] = (self._end, rgb.shape, donor.landmarks, donor.offset)
        self._end += rgb.nbytes

    def __getitem__(self, key: tuple[int, int]) -> Donor:
        at, shape, landmarks, offset = self._index[key]
        n = int(np.prod(shape))
        rgb = np.frombuffer(os.pread(self._file.fileno(), n, at), np.uint8).reshape(shape)
        return Donor(rgb, landmarks, offset)

    def __iter__(self):
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def close(self) -> None:
        self._file.close()


def collect_donors(source: Path, plans: list[tuple[LipsyncPlan, FaceTrack]],
                   colour: VideoColour | None = None) -> DonorStore:
    """First pass: the donor crops the retrieval plans need, keyed by ``(track id, source frame)``
    (a :class:`DonorStore`: on disk, not in memory).

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
    donors = DonorStore()
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


def _crop_donors(rgb: np.ndarray, i: int, wanted, donors: DonorStore) -> None:
    """Retrieval donors of frame ``i``: crops around each wanted track's face, landmarks shifted."""
    for tid, track in wanted:
        row = track.index_of(i)
        lm = track.landmarks[row]
        x0, y0, x1, y1 = _crop_box(lm, rgb.shape[1], rgb.shape[0])
        shifted = lm.copy()
        shifted[:, 0] -= x0
        shifted[:, 1] -= y0
        donors.add((tid, i), Donor(rgb[y0:y1, x0:x1], shifted, (x0, y0)))


def render_lipsync(
    source: Path,
    analysis: FaceAnalysis,
    plans: list[tuple[LipsyncPlan, FaceTrack]],
    output: Path,
    *,
    compositor=None,
    lossless: bool = False,
    crf: int = DEFAULT_CRF,
    preset: str = DEFAULT_PRESET,
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
        crf, preset: x264 quality and speed when not lossless (default :data:`DEFAULT_PRESET` at
            :data:`DEFAULT_CRF`).

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


def _todo(plans: list[tuple[LipsyncPlan, FaceTrack]]) -> dict[int, list]:
    """Frame -> ``[(track, donor)]`` to composite, in track order: ``donor`` is the ``(track id,
    source frame)`` key of a retrieval donor (read from the :class:`DonorStore` when the frame is
    composited) or the plan's donor source (asked for its donor in the second pass).

    Raises:
        InputError: a plan with neither source frames nor a donor source.
    """
    todo: dict[int, list] = {}
    for plan, track in plans:
        if plan.source_frames is None and plan.donors is None and len(plan.frames):
            raise InputError(f"lip-sync plan of track {track.id} has neither source frames nor a donor source",
                             "a lip-sync backend must set LipsyncPlan.source_frames or LipsyncPlan.donors")
        for k, f in enumerate(plan.frames):
            donor = (track.id, int(plan.source_frames[k])) if plan.source_frames is not None else plan.donors
            todo.setdefault(int(f), []).append((track, donor))
    return todo


class _Stage(threading.Thread):
    """One stage of the render's pipeline (decode, or encode) in its own thread, fed or drained
    through bounded queues (:data:`QUEUE_FRAMES` frames), so decoding, compositing and x264 encoding
    of neighbouring frames overlap; an error is kept and re-raised by :meth:`result`."""

    def __init__(self, name: str, work: Callable[["_Stage"], None]) -> None:
        super().__init__(name=name, daemon=True)
        self.inbox: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
        self.outbox: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._work = work

    def run(self) -> None:
        try:
            self._work(self)
        except BaseException as exc:  # handed to the compositing thread
            self.error = exc
        finally:
            self.put(_END)

    def put(self, item) -> bool:
        """Queue ``item`` for the consumer; False once the consumer has stopped."""
        while not self.stop.is_set():
            try:
                self.outbox.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def result(self) -> None:
        self.join()
        if self.error is not None:
            raise self.error


_END = object()


def _render(source, analysis, plans, output, compositor, lossless, crf, preset, progress) -> dict:
    todo = _todo(plans)
    colour = video_colour(probe_video(source))
    donors = collect_donors(source, plans, colour)
    try:
        return _second_pass(source, analysis, output, compositor, lossless, crf, preset, progress, todo, donors, colour)
    finally:
        donors.close()


def _second_pass(source, analysis, output, compositor, lossless, crf, preset, progress, todo, donors, colour) -> dict:
    """Decode, composite and encode every frame (three threads, see :class:`_Stage`)."""
    import av

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
        ostream = _output_stream(out, istream, lossless, crf, preset)

        def decode(st: _Stage) -> None:
            for i, frame in enumerate(src.decode(istream)):
                rotation = getattr(frame, "rotation", 0) or 0
                rgb = to_display(frame_to_rgb(frame, colour), rotation) if i in todo else None
                if not st.put((i, frame, rgb, rotation)):
                    return

        def encode(st: _Stage) -> None:
            while (frame := st.inbox.get()) is not _END:
                for pkt in ostream.encode(frame):
                    out.mux(pkt)
            for pkt in ostream.encode():
                out.mux(pkt)

        decoder, encoder = _Stage("lipdub-decode", decode), _Stage("lipdub-encode", encode)
        decoder.start()
        encoder.start()
        try:
            while (item := decoder.outbox.get()) is not _END:
                i, frame, rgb, rotation = item
                if i in cut_frames:
                    compositor.reset()
                frame = _composited(i, frame, rgb, rotation, todo.get(i), donors, compositor, ostream.pix_fmt, istream.time_base, done,
                                    colour)
                encoder.inbox.put(frame)
                if progress and i % 10 == 0:
                    progress(i + 1, total)
        finally:
            decoder.stop.set()
            encoder.inbox.put(_END)
            encoder.result()
            decoder.result()
    tmp.replace(output)
    if progress:
        progress(total, total)
    return {"composited_frames": {str(k): v for k, v in done.items()}, "frames": total}


def _output_stream(out, istream, lossless: bool, crf: int, preset: str):
    """The x264 stream of the output: the source's size, time base and colour tags (primaries,
    transfer, matrix, range); 4:4:4 chroma for an odd width or height, which 4:2:0 cannot hold."""
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
    return ostream


def _composited(i: int, frame, rgb, rotation, jobs, donors: DonorStore, compositor, pix_fmt: str, time_base, done: dict[int, int],
                colour: VideoColour):
    """Frame ``i`` ready for the encoder: the donors of ``jobs`` composited (a new frame in
    ``pix_fmt``), or the decoded frame itself (same planes, never through RGB). A composited
    yuv420p frame keeps the decoded planes outside the region the compositor changed
    (:func:`_patched`); only that region goes back through RGB, with ``colour``'s matrix and range."""
    import av

    pts = frame.pts
    box = None
    for track, donor in jobs or ():
        row = track.index_of(i)
        if isinstance(donor, tuple):  # a retrieval donor's key
            donor = donors[donor]
        elif not isinstance(donor, Donor):  # a DonorSource
            donor = donor.donor(i, rgb)
            if donor is None:  # e.g. past the end of an external tool's output
                continue
        d_rgb, d_lm = donor.as_frame(rgb)
        rgb = compositor.composite(rgb, track.landmarks[row], d_rgb, d_lm, key=track.id, donor_is_frame=donor.offset is not None,
                                   inplace=True)
        done[track.id] = done.get(track.id, 0) + 1
        b = compositor.last.box
        if b[2] > b[0] and b[3] > b[1]:
            box = b if box is None else (min(box[0], b[0]), min(box[1], b[1]), max(box[2], b[2]), max(box[3], b[3]))
        elif box is None:
            box = (0, 0, 0, 0)
    if box is not None:
        new = _patched(frame, rgb, box, colour) if (rotation % 360 == 0 and pix_fmt == "yuv420p") else None
        if new is None:
            new = rgb_to_frame(to_storage(rgb, rotation), pix_fmt, colour)
        new.pts = pts
        new.time_base = time_base
        frame = new
    elif frame.format.name != pix_fmt:
        frame = frame.reformat(format=pix_fmt)
        frame.pts = pts
    frame.pict_type = av.video.frame.PictureType.NONE
    return frame


def _patched(frame, rgb: np.ndarray, box: tuple[int, int, int, int], colour: VideoColour):
    """A yuv420p copy of decoded ``frame`` with the ``box`` region (x0, y0, x1, y1, widened to x on
    even and y on multiples of 4, the packed layout of PyAV's yuv420p arrays) of ``rgb`` converted
    back to YUV by swscale (:func:`~lipdub.media.colour.rgb_to_frame` with ``colour``) and pasted
    into its planes; None when the frame is not yuv420p with a width even and a height a multiple of
    4 (the caller converts the whole frame)."""
    import av

    h, w = rgb.shape[:2]
    if frame.format.name != "yuv420p" or h % 4 or w % 2 or (frame.height, frame.width) != (h, w):
        return None
    planes = frame.to_ndarray(format="yuv420p")  # (3h/2, w): Y, then U and V, two chroma rows per row
    x0, y0 = box[0] // 2 * 2, box[1] // 4 * 4
    x1, y1 = min(w, -(-box[2] // 2) * 2), min(h, -(-box[3] // 4) * 4)
    if x1 > x0 and y1 > y0:
        ch, cw = (y1 - y0), (x1 - x0)
        crop = rgb_to_frame(rgb[y0:y1, x0:x1], "yuv420p", colour)
        yuv = crop.to_ndarray(format="yuv420p")
        planes[y0:y1, x0:x1] = yuv[:ch]
        u_crop = yuv[ch:ch + ch // 4].reshape(ch // 2, cw // 2)
        v_crop = yuv[ch + ch // 4:].reshape(ch // 2, cw // 2)
        u = planes[h:h + h // 4].reshape(h // 2, w // 2)
        v = planes[h + h // 4:].reshape(h // 2, w // 2)
        u[y0 // 2:y1 // 2, x0 // 2:x1 // 2] = u_crop
        v[y0 // 2:y1 // 2, x0 // 2:x1 // 2] = v_crop
    out = av.VideoFrame.from_ndarray(planes, format="yuv420p")
    out.color_range = frame.color_range
    return out
