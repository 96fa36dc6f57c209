"""Stage 1, ingest: probe and validate the source, extract the mix and analysis audio.

Uses PyAV (FFmpeg's libraries): streams are probed from the container, video frames are counted by
demuxing packets (no decoding), and audio is decoded once and resampled by libswresample to

* the mix audio: 48 kHz stereo float32 (mono sources are duplicated, surround sources are downmixed
  with FFmpeg's standard matrix), and
* the analysis audio: 16 kHz mono float32 (VAD, diarization, ASR).
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from ..errors import InputError
from ..files import check_input_file

log = logging.getLogger(__name__)

MIX_RATE_HZ = 48_000
ANALYSIS_RATE_HZ = 16_000


# FFmpeg's names of the colour enums (libavutil/pixdesc.c, the values of libavutil/pixfmt.h's
# AVColorPrimaries / AVColorTransferCharacteristic / AVColorSpace / AVColorRange; ffprobe prints
# the same names and the ffmpeg -color_* options take them). 2 = unspecified, left out.
COLOR_PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film", 9: "bt2020",
                   10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "jedec-p22"}
COLOR_TRANSFERS = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear", 9: "log100",
                   10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1", 14: "bt2020-10",
                   15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67"}
COLOR_SPACES = {0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "ycgco",
                9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 12: "chroma-derived-nc", 13: "chroma-derived-c", 14: "ictcp"}
COLOR_RANGES = {1: "tv", 2: "pc"}


class VideoInfo(BaseModel):
    """The first video stream. ``fps`` is the nominal rate as ``"num/den"``; ``is_vfr`` when packet
    durations vary (variable frame rate, e.g. phone recordings).

    ``rotation_deg`` is the display rotation, counter-clockwise degrees in {0, 90, 180, 270}: the
    display matrix's angle as FFmpeg's ``av_display_rotation_get``, ffprobe's side-data
    ``rotation`` and PyAV's ``VideoFrame.rotation`` give it (a phone's portrait clip with the old
    clockwise ``rotate=90`` tag has 270); showing the stored picture means ``np.rot90(picture, rotation_deg // 90)``.
    ``color_*`` are FFmpeg's names of the stream's colour tags (``"bt709"``, ``"tv"``), None when
    unspecified; ``timecode`` is the start timecode (``"01:00:00:00"``, ``;`` before the frames
    for drop-frame) of a QuickTime/MP4 ``tmcd`` track or a ``timecode`` tag, None when absent.
    """

    codec: str
    width: int
    height: int
    pix_fmt: str | None
    fps: str
    avg_fps: float
    frame_count: int
    duration_s: float
    is_vfr: bool
    rotation_deg: int = 0
    color_primaries: str | None = None
    color_transfer: str | None = None
    color_space: str | None = None
    color_range: str | None = None
    timecode: str | None = None

    @property
    def fps_fraction(self) -> Fraction:
        """The nominal frame rate as an exact :class:`~fractions.Fraction` (30000/1001, 25, ...)."""
        return Fraction(self.fps)


class AudioInfo(BaseModel):
    codec: str
    sample_rate_hz: int
    channels: int
    layout: str
    duration_s: float
    language: str | None = None


class MediaInfo(BaseModel):
    """What ingest found in the source. ``duration_s`` is the container duration."""

    path: str
    container: str
    duration_s: float
    size_bytes: int
    video: VideoInfo | None
    audio: AudioInfo

    @property
    def has_video(self) -> bool:
        return self.video is not None


def _open(path: Path):
    import av

    check_input_file(path)  # missing, a link loop, a FIFO or device, /proc, empty: said as such
    try:
        return av.open(str(path))
    except av.error.FFmpegError as exc:
        raise InputError(
            f"{path} is not a readable media file ({exc.strerror or type(exc).__name__})",
            "pass a video or audio file that ffmpeg can play; a truncated or mislabelled file cannot be dubbed",
        ) from None


def display_rotation_deg(path: str | Path) -> int:
    """The display rotation of the first video stream of ``path``: counter-clockwise degrees in
    {0, 90, 180, 270} (the display matrix of the first decoded frame, PyAV's ``VideoFrame.rotation``,
    rounded to a quarter turn); 0 when there is no matrix, no video or no decodable frame.

    Raises:
        InputError: missing, empty or unreadable file.
    """
    import av

    with _open(Path(path)) as container:
        if not container.streams.video:
            return 0
        try:
            frame = next(container.decode(video=0), None)
        except av.error.FFmpegError:
            return 0
        if frame is None:
            return 0
        return int(round((getattr(frame, "rotation", 0) or 0) / 90.0)) % 4 * 90


def _timecode(container, vstream) -> str | None:
    """Start timecode: the video stream's ``timecode`` tag (FFmpeg's mov demuxer copies the tmcd
    track's there), else a data stream's, else the container's."""
    for tags in (vstream.metadata, *(s.metadata for s in container.streams if s.type == "data"), container.metadata):
        tc = tags.get("timecode")
        if tc:
            return str(tc)
    return None


def _colour_tags(cc) -> dict:
    return {"color_primaries": COLOR_PRIMARIES.get(int(cc.color_primaries or 2)),
            "color_transfer": COLOR_TRANSFERS.get(int(cc.color_trc or 2)),
            "color_space": COLOR_SPACES.get(int(cc.colorspace if cc.colorspace is not None else 2)),
            "color_range": COLOR_RANGES.get(int(cc.color_range or 0))}


def probe(path: str | Path) -> MediaInfo:
    """Probe and validate ``path``.

    Returns:
        A :class:`MediaInfo` with the first video stream (if any) and the first audio stream.

    Raises:
        InputError: missing/empty/unreadable/truncated file, no audio stream, no decodable video
            frames in a video stream.
    """
    path = Path(path)
    container = _open(path)
    with container:
        astreams = [s for s in container.streams if s.type == "audio"]
        vstreams = [s for s in container.streams if s.type == "video" and not _is_cover_art(s)]
        if not astreams:
            what = "video" if vstreams else "file"
            raise InputError(
                f"{path} has no audio stream, so there is no speech to dub",
                f"pass a {what} with its soundtrack (mux one in with: ffmpeg -i VIDEO -i AUDIO -c copy OUT.mp4)",
            )
        a = astreams[0]
        video = _video_info(container, vstreams[0], path) if vstreams else None
        if video is not None:
            video.rotation_deg = display_rotation_deg(path)
        cc = a.codec_context
        duration_s = float(container.duration / 1_000_000) if container.duration else 0.0
        adur = float(a.duration * a.time_base) if a.duration else duration_s
        layout = cc.layout.name if cc.layout is not None else f"{cc.channels}ch"
        return MediaInfo(
            path=str(path.resolve()),
            container=container.format.name,
            duration_s=duration_s or adur,
            size_bytes=path.stat().st_size,
            video=video,
            audio=AudioInfo(
                codec=cc.name,
                sample_rate_hz=cc.sample_rate,
                channels=cc.channels,
                layout=layout,
                duration_s=adur,
                language=a.metadata.get("language"),
            ),
        )


def _video_info(container, v, path: Path) -> VideoInfo:
    """The :class:`VideoInfo` of stream ``v`` (packets demuxed, not decoded), rotation not yet read.

    Raises:
        InputError: truncated/corrupt stream, no frames.
    """
    import av

    frames, durations, last_end = 0, [], 0.0
    try:
        for pkt in container.demux(v):
            if pkt.size == 0 or pkt.pts is None:
                continue
            frames += 1
            if pkt.duration:
                durations.append(pkt.duration)
            end = float((pkt.pts + (pkt.duration or 0)) * v.time_base)
            last_end = max(last_end, end)
    except av.error.FFmpegError as exc:
        raise InputError(
            f"{path} is truncated or corrupt: reading video packets failed after {frames} frames ({exc.strerror})",
            "re-export or re-download the file",
        ) from None
    if frames == 0:
        raise InputError(f"{path} has a video stream with no frames", "re-export the file")
    if v.frames and frames < v.frames:
        raise InputError(
            f"{path} is truncated: its index lists {v.frames} video frames but only {frames} are in the file",
            "re-export or re-download the file",
        )
    start = float(v.start_time * v.time_base) if v.start_time is not None else 0.0
    vdur = max(last_end - start, 1e-6)
    rate = v.guessed_rate or v.average_rate or Fraction(frames, 1) / Fraction(vdur).limit_denominator(1000)
    is_vfr = bool(durations) and (max(durations) - min(durations)) > 1
    return VideoInfo(
        codec=v.codec_context.name,
        width=v.codec_context.width,
        height=v.codec_context.height,
        pix_fmt=v.codec_context.pix_fmt,
        fps=f"{Fraction(rate).numerator}/{Fraction(rate).denominator}",
        avg_fps=frames / vdur,
        frame_count=frames,
        duration_s=vdur,
        is_vfr=is_vfr,
        timecode=_timecode(container, v),
        **_colour_tags(v.codec_context),
    )


def probe_video(path: str | Path) -> VideoInfo:
    """The first (non cover-art) video stream of ``path``, display rotation included; no audio
    stream needed (unlike :func:`probe`).

    Raises:
        InputError: missing/empty/unreadable/truncated file, no video stream, no frames.
    """
    path = Path(path)
    with _open(path) as container:
        vstreams = [s for s in container.streams if s.type == "video" and not _is_cover_art(s)]
        if not vstreams:
            raise InputError(f"{path} has no video stream", "pass a video file")
        info = _video_info(container, vstreams[0], path)
    info.rotation_deg = display_rotation_deg(path)
    return info


def check_video_decodes(path: str | Path) -> int:
    """Decode every frame of the first video stream (no conversion), so that a damaged stream is
    found at ingest, not in the faces stage after four stages of work.

    Returns:
        The number of frames decoded.

    Raises:
        InputError: a packet does not decode (a corrupted middle); the message says after how many frames.
    """
    import av

    path = Path(path)
    n = 0
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for _ in container.decode(stream):
                n += 1
        except av.error.FFmpegError as exc:
            raise InputError(f"{path}: the video stream is damaged, decoding fails after {n} frames ({exc.strerror})",
                             "re-export or re-download the file") from None
    return n


def _is_cover_art(stream) -> bool:
    disposition = getattr(stream, "disposition", None)
    try:
        import av

        return bool(disposition and disposition & av.stream.Disposition.attached_pic)
    except Exception:  # pragma: no cover - older PyAV
        return False


def decode_audio(path: str | Path, info: MediaInfo) -> tuple[np.ndarray, np.ndarray]:
    """Decode the first audio stream.

    Returns:
        ``(mix, analysis)``: float32 ``(n, 2)`` at 48 kHz and float32 ``(m,)`` at 16 kHz, both padded
        or trimmed to the container duration so they line up with the video timeline.

    Raises:
        InputError: the audio cannot be decoded (corrupt or truncated stream).
    """
    total_s = info.duration_s  # the container timeline, which the rendered output keeps
    mix, analysis = _Timeline(round(total_s * MIX_RATE_HZ), 2), _Timeline(round(total_s * ANALYSIS_RATE_HZ), None)
    _decode_into(Path(path), mix, analysis)
    return mix.result(), analysis.result()


def decode_audio_to_wav(path: str | Path, info: MediaInfo, mix_wav: str | Path) -> np.ndarray:
    """:func:`decode_audio` with the 48 kHz mix written to ``mix_wav`` (32-bit float stereo WAV, the
    same samples) as it is decoded instead of held: for a long soundtrack only the 16 kHz analysis
    audio is kept in memory (a 10-minute 48 kHz stereo mix is 230 MB as float32).

    Returns:
        The analysis audio, float32 ``(m,)`` at 16 kHz, as :func:`decode_audio` gives it.

    Raises:
        InputError: the audio cannot be decoded (corrupt or truncated stream).
    """
    import soundfile as sf

    total_s = info.duration_s
    analysis = _Timeline(round(total_s * ANALYSIS_RATE_HZ), None)
    with sf.SoundFile(str(mix_wav), "w", MIX_RATE_HZ, 2, subtype="FLOAT", format="WAV") as f:
        mix = _Timeline(round(total_s * MIX_RATE_HZ), 2, sink=f)
        _decode_into(Path(path), mix, analysis)
        mix.result()
    return analysis.result()


def _decode_into(path: Path, mix: _Timeline, analysis: _Timeline) -> None:
    """Decode ``path``'s first audio stream into the 48 kHz stereo ``mix`` and 16 kHz mono ``analysis``.

    Raises:
        InputError: the audio cannot be decoded, or decodes to no samples.
    """
    import av

    with _open(path) as container:
        stream = container.streams.audio[0]
        mix_rs = av.AudioResampler(format="flt", layout="stereo", rate=MIX_RATE_HZ)
        ana_rs = av.AudioResampler(format="flt", layout="mono", rate=ANALYSIS_RATE_HZ)
        n_errors = 0
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    n_errors += 1  # a damaged packet: skip it, count it
                    continue
                for frame in frames:
                    frame.pts = None  # let the resampler run on sample counts (handles gaps/odd pts)
                    for out in mix_rs.resample(frame):
                        mix.add(out.to_ndarray().reshape(-1, 2))
                    for out in ana_rs.resample(frame):
                        analysis.add(out.to_ndarray().reshape(-1))
            for out in mix_rs.resample(None):
                mix.add(out.to_ndarray().reshape(-1, 2))
            for out in ana_rs.resample(None):
                analysis.add(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            raise InputError(
                f"{path}: decoding the audio failed ({exc.strerror})", "re-export or re-download the file"
            ) from None
        if n_errors:
            log.warning("%s: %d damaged audio packets were skipped", path, n_errors)
    if not mix.decoded:
        raise InputError(f"{path}: the audio stream decodes to no samples", "check the file plays with sound")


class _Timeline:
    """Decoded float32 samples laid on a timeline of ``n`` samples as they come (trimmed beyond it,
    zeros where the stream ends early): one array of the final length, not the decoded pieces plus
    their concatenation; with a ``sink`` (an open soundfile writer) written there instead of held.
    ``n <= 0`` (no container duration): the pieces as decoded, whole."""

    def __init__(self, n: int, channels: int | None, sink=None) -> None:
        self.n, self.channels, self.sink, self.decoded, self._at, self._parts = n, channels, sink, 0, 0, []
        self._out = np.zeros((n, channels) if channels else n, np.float32) if n > 0 and sink is None else None

    def add(self, x: np.ndarray) -> None:
        self.decoded += len(x)
        if self.n <= 0:
            if self.sink is not None:
                self.sink.write(x)
            else:
                self._parts.append(x)
            return
        k = min(len(x), self.n - self._at)
        if k > 0:
            if self.sink is not None:
                self.sink.write(x[:k])
            else:
                self._out[self._at:self._at + k] = x[:k]
            self._at += k

    def result(self) -> np.ndarray | None:
        """The samples (None with a sink: the zeros that end the timeline are written to it)."""
        if self.sink is not None:
            if 0 < self.n and self._at < self.n:
                self.sink.write(np.zeros((self.n - self._at, self.channels) if self.channels else self.n - self._at, np.float32))
            return None
        return self._out if self._out is not None else np.concatenate(self._parts).astype(np.float32)


def video_frame_times(path: str | Path) -> np.ndarray:
    """Presentation time (seconds from the stream start) of every frame, float64 ``(n_frames,)``,
    from the demuxed packets' pts (no decoding; exact for variable frame rate).

    Raises:
        av.error.FFmpegError: the file cannot be opened (callers probe first).
    """
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        pts = sorted(p.pts for p in c.demux(v) if p.size and p.pts is not None)
        start = v.start_time or 0
        return np.array([(p - start) * v.time_base for p in pts], dtype=np.float64)


def display_centres(frame_times_s: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Middle of the display interval of each of ``frames`` (int indices into ``frame_times_s``, the
    presentation time of every frame, seconds): ``t[f] + (t[f + 1] - t[f]) / 2``, the median frame
    duration for the last frame (VFR-safe). A frame is on screen from its presentation time to the
    next one, so the mouth it shows is planned for, and its audio read at, the middle of that interval
    (the landmark sync score, :mod:`lipdub.qc.sync`, reads the audio the same way). float64 ``(N,)``."""
    t = np.asarray(frame_times_s, np.float64)
    f = np.asarray(frames, np.int64)
    dur = np.diff(t) if len(t) > 1 else np.array([0.04])
    med = float(np.median(dur)) if len(dur) else 0.04
    d = np.where(f + 1 < len(t), dur[np.minimum(f, len(dur) - 1)], med)
    return t[f] + 0.5 * d
