"""Which Y'CbCr matrix a video's pixels are encoded with, and converting between matrices.

A video stream stores Y'CbCr; the matrix that turns it back into R'G'B' is BT.601 (SD) or BT.709
(HD), usually given by the stream's ``matrix_coefficients`` tag (H.264/HEVC VUI, ProRes frame
header, MOV ``colr`` atom). Many files carry no tag. Players then guess:

* mpv (``video/csputils.c``, ``mp_csp_guess_colorspace``): BT.709 when ``width >= 1280`` or
  ``height > 576``, else BT.601 -- the rule used here (:func:`guess_matrix`);
* ffplay through SDL2 (``SDL_YUV_CONVERSION_AUTOMATIC``, ``SDL_YUV_SD_THRESHOLD`` = 576): BT.601
  up to 576 lines, BT.709 above (the same except for wide, short frames such as 1280x544);
* FFmpeg's libswscale (the ``ffmpeg`` CLI, PyAV) does not guess: an untagged stream is decoded as
  BT.601 whatever its size.

An untagged range is limited ("tv", 16-235), the default of every decoder. Primaries and transfer
are not converted: BT.601 and BT.709 share the transfer curve, and an SD-to-HD conversion in post
production changes the matrix (the visible error: a hue and brightness shift of several levels),
not the gamut.

Conversions of whole files use FFmpeg's ``colorspace`` filter (``libavfilter/vf_colorspace.c``)
with every input property given explicitly, so neither the frames' tags nor a missing tag can
change what it does; frames in Python go through PyAV's ``VideoFrame.reformat`` with explicit
``src_colorspace`` / ``dst_colorspace`` (libswscale), which PyAV versions otherwise default
differently (older ones always BT.601, newer ones the frame's tag). Y'CbCr is read into RGB with
libswscale's ``SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT``: its default fast path truncates, and reads
a picture about one level too dark (R/G/B -0.9 / -1.3 / -0.9 levels on a shared 1080x1920 clip, PyAV
18), which a lip-synced frame written back from RGB would keep while its untouched neighbours do not.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from .probe import VideoInfo

SD_MAX_HEIGHT = 576  # lines; mpv and SDL2: above this a picture is HD
HD_MIN_WIDTH = 1280  # mpv: a frame this wide is HD whatever its height (1280x544 scope)
BT601 = "smpte170m"  # FFmpeg's matrix names: smpte170m and bt470bg hold the same BT.601 coefficients
BT709 = "bt709"
# FFmpeg matrix names -> PyAV's Colorspace names (libswscale's SWS_CS_* coefficient tables)
_PYAV_COLORSPACE = {"bt709": "ITU709", "fcc": "FCC", "bt470bg": "ITU601", "smpte170m": "ITU601",
                    "smpte240m": "SMPTE240M", "bt2020nc": "BT2020", "bt2020c": "BT2020"}
# FFmpeg matrix names -> the colorspace filter's ``space`` names (it knows no other matrices)
_FILTER_SPACE = {"bt709": "bt709", "fcc": "fcc", "bt470bg": "bt470bg", "smpte170m": "smpte170m",
                 "smpte240m": "smpte240m", "ycgco": "ycgco", "bt2020nc": "bt2020ncl"}


@dataclass(frozen=True)
class VideoColour:
    """How a stream's Y'CbCr is to be read.

    Attributes:
        matrix: FFmpeg's name of the Y'CbCr matrix (``"bt709"``, ``"smpte170m"``, ``"bt470bg"``,
            ``"bt2020nc"`` ...).
        range: ``"tv"`` (limited, 16-235) or ``"pc"`` (full).
        matrix_tagged / range_tagged: the stream says so (False: assumed, see :func:`video_colour`).
    """

    matrix: str
    range: str = "tv"
    matrix_tagged: bool = True
    range_tagged: bool = True

    @property
    def is_bt601(self) -> bool:
        return self.matrix in ("smpte170m", "bt470bg")

    def same_matrix(self, other: VideoColour) -> bool:
        """True when both read their pixels with the same coefficients and range (BT.601's two names are one)."""
        a, b = (BT601 if c.is_bt601 else c.matrix for c in (self, other))
        return a == b and self.range == other.range

    def describe(self) -> str:
        """``"bt709 (tagged)"``, ``"smpte170m (untagged: SD, BT.601 assumed)"``."""
        if self.matrix_tagged:
            return f"{self.matrix} (tagged)"
        kind = "SD, BT.601" if self.is_bt601 else "HD, BT.709"
        return f"{self.matrix} (untagged: {kind} assumed by frame size)"


def guess_matrix(width: int, height: int) -> str:
    """The matrix of an untagged stream of coded size ``width`` x ``height`` pixels: BT.709 when
    ``width >= 1280`` or ``height > 576``, else BT.601 (mpv's ``mp_csp_guess_colorspace``)."""
    return BT709 if width >= HD_MIN_WIDTH or height > SD_MAX_HEIGHT else BT601


def video_colour(video: VideoInfo) -> VideoColour:
    """The matrix and range of ``video``: its tags where it has them, else :func:`guess_matrix`
    of its coded (stored, before display rotation) size and limited range."""
    matrix = video.color_space if video.color_space and video.color_space != "gbr" else None
    return VideoColour(matrix or guess_matrix(video.width, video.height), video.color_range or "tv",
                       matrix_tagged=matrix is not None, range_tagged=video.color_range is not None)


def _pyav_args(colour: VideoColour, prefix: str) -> dict:
    from av.video.reformatter import ColorRange, Colorspace, Interpolation

    args = {f"{prefix}_color_range": ColorRange.JPEG if colour.range == "pc" else ColorRange.MPEG,
            "interpolation": Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT}
    name = _PYAV_COLORSPACE.get(colour.matrix)
    if name is not None:
        args[f"{prefix}_colorspace"] = Colorspace[name]
    return args


def frame_to_rgb(frame, colour: VideoColour) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)`` of a decoded PyAV ``VideoFrame`` read with ``colour``'s matrix and
    range (not the frame's own tag nor PyAV's default), rounded exactly (no fast-path bias)."""
    if frame.format.name in ("rgb24", "bgr24", "gbrp", "rgba", "bgra"):
        return frame.to_ndarray(format="rgb24")
    return frame.to_ndarray(format="rgb24", **_pyav_args(colour, "src"))


def rgb_to_frame(rgb: np.ndarray, pix_fmt: str, colour: VideoColour):
    """A PyAV ``VideoFrame`` of ``pix_fmt`` (``"yuv420p"``) encoding uint8 RGB ``(H, W, 3)`` with
    ``colour``'s matrix and range: the inverse of :func:`frame_to_rgb`."""
    import av

    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return frame.reformat(format=pix_fmt, **_pyav_args(colour, "dst"))


def conversion_filter(src: VideoColour, dst: VideoColour, *, pix_fmt: str | None = None) -> str | None:
    """FFmpeg filter that re-encodes pixels read with ``src``'s matrix and range into ``dst``'s
    (the ``colorspace`` filter, matrix and range only: primaries and transfer given equal on both
    sides), or None when they already agree. ``pix_fmt`` (e.g. ``"yuv422p10le"``): convert to it
    first, so the conversion runs at the output's bit depth.

    Raises:
        ValueError: a matrix the colorspace filter cannot convert (e.g. ``bt2020c``, ``ictcp``).
    """
    if src.same_matrix(dst):
        return None
    spaces = [_FILTER_SPACE.get(c.matrix) for c in (src, dst)]
    if None in spaces:
        raise ValueError(f"cannot convert Y'CbCr matrix {src.matrix} to {dst.matrix}")
    out = ""
    if pix_fmt:
        out = f"format={pix_fmt},"
    fmt = f":format={_filter_format(pix_fmt)}" if pix_fmt else ""
    return (out + f"colorspace=ispace={spaces[0]}:space={spaces[1]}:irange={src.range}:range={dst.range}"
            f":iprimaries=bt709:primaries=bt709:itrc=bt709:trc=bt709{fmt}")


def _filter_format(pix_fmt: str) -> str:
    """The colorspace filter's ``format`` name of a pixel format (``yuv422p10le`` -> ``yuv422p10``)."""
    return pix_fmt[:-2] if pix_fmt.endswith(("le", "be")) else pix_fmt


#: Pixel formats :meth:`Picture.region` converts a region of (8-bit planar 4:2:0); others are converted whole.
_REGION_FORMATS = ("yuv420p", "yuvj420p")


class Picture:
    """A decoded PyAV ``VideoFrame`` read with ``colour``'s matrix and range, converted to RGB on
    demand: whole (:meth:`rgb`, :func:`frame_to_rgb` in display orientation) or only a region
    (:meth:`region`), so that a consumer that needs the face alone does not convert a whole 1080p
    frame (12 ms against 3 ms for a 600x600 region, PyAV 18).

    A region is cut from the Y'CbCr planes at even bounds (4:2:0 chroma) and converted as a frame
    of its own, with the same libswscale settings; its pixels differ from those of the whole frame's
    conversion by at most a few levels (libswscale's chroma interpolation of a frame PyAV builds
    from planes, whose chroma siting is unset: up to 7 levels, on 6-11 % of the pixels of the shared
    demo1 dub's frames).

    One picture may be handed to several threads (:func:`lipdub.media.prefetch.fanned_out`): the
    conversions of its frame are serialized by a lock of its own, because PyAV keeps one libswscale
    context per ``VideoFrame`` (``VideoFrame.reformatter``, PyAV 18) and two threads scaling through
    it at once hang, crash or give wrong pixels (seen on a 351x351 yuv444p clip).
    """

    def __init__(self, frame, colour: VideoColour, rotation_deg: float = 0.0) -> None:
        self.frame, self.colour, self.rotation_deg = frame, colour, rotation_deg
        self._lock = threading.Lock()

    def rgb(self) -> np.ndarray:
        """uint8 RGB ``(H, W, 3)`` of the whole frame in display orientation (the counter-clockwise
        display rotation applied as :func:`lipdub.faces.analyze.to_display` applies it); a new array
        on every call, safe from several threads at once."""
        k = int(round(self.rotation_deg / 90.0)) % 4
        with self._lock:
            rgb = frame_to_rgb(self.frame, self.colour)
        return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb

    def region(self, x0: int, y0: int, x1: int, y1: int) -> tuple[np.ndarray, int, int]:
        """uint8 RGB of the display-orientation region ``[x0, x1) x [y0, y1)`` (pixels, clipped to the
        frame, widened to even bounds) and its origin ``(ox, oy)`` in the frame. A rotated stream, a
        format outside ``("yuv420p", "yuvj420p")`` or an odd-sized region: the slice of :meth:`rgb`."""
        import av

        f = self.frame
        w, h = (f.width, f.height) if not int(round(self.rotation_deg / 90.0)) % 2 else (f.height, f.width)
        ox, oy = max(0, int(x0)) // 2 * 2, max(0, int(y0)) // 2 * 2
        ex, ey = min(w, -(-int(x1) // 2) * 2), min(h, -(-int(y1) // 2) * 2)
        if ex <= ox or ey <= oy:
            return np.zeros((0, 0, 3), np.uint8), ox, oy
        if int(round(self.rotation_deg / 90.0)) % 4 or f.format.name not in _REGION_FORMATS or (ex - ox) % 2 or (ey - oy) % 2:
            return np.ascontiguousarray(self.rgb()[oy:ey, ox:ex]), ox, oy
        planes = [np.frombuffer(p, np.uint8).reshape(-1, p.line_size) for p in f.planes]
        cut = [planes[0][oy:ey, ox:ex], planes[1][oy // 2:ey // 2, ox // 2:ex // 2], planes[2][oy // 2:ey // 2, ox // 2:ex // 2]]
        packed = np.concatenate([c.reshape(-1) for c in cut]).reshape(-1, ex - ox)
        part = av.VideoFrame.from_ndarray(packed, format="yuv420p")
        return frame_to_rgb(part, self.colour), ox, oy
