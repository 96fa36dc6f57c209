"""The ``broadcast`` deliverable: a QuickTime master for a TV station or a post house.

* Picture: Apple ProRes 422 HQ (FFmpeg's ``prores_ks``, profile 3 = HQ, vendor ``apl0``), 10-bit
  4:2:2 (``yuv422p10le``), re-encoded from the source's video stream or from the lip-sync stage's
  video (H.264 in the source's stored orientation). The display rotation is applied to the pixels
  (upright picture, no display matrix: broadcast tools often ignore the QuickTime matrix).
* Colour: the source's colour primaries / transfer / matrix / range tags when it has them, else
  BT.709 (ITU-R BT.709-6, the HD standard) with limited ("tv") range; written in the ProRes frame
  headers and the MOV ``colr`` atom. A tagged source keeps its pixels. An untagged source is read
  with the matrix players assume for its size (:func:`lipdub.media.colour.video_colour`: BT.601 up
  to 576 lines and under 1280 pixels wide, else BT.709); when that is not the BT.709 the master is
  tagged with, the pixels are converted to BT.709 (FFmpeg's ``colorspace`` filter, at 10 bits), so
  the master shows the colours the source shows.
* Frame rate: the source's nominal rate as an exact fraction (24000/1001, 25, 30000/1001, ...),
  constant (a variable-frame-rate source is conformed to its nominal rate by duplicating or
  dropping frames; a constant-rate one keeps every frame).
* Sound: 48 kHz 24-bit PCM (``pcm_s24le``), one stereo track per :class:`AudioTrack` (the dub mix
  first, then the M&E and dialogue stems), each with a title, a handler name and a language.
* Timecode: a QuickTime ``tmcd`` track starting at the source's timecode when it has one (or the
  one given); drop-frame (``;``) only at 29.97 / 59.94 fps (SMPTE ST 12-1).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from ..errors import ConfigError, InputError, StageFailed
from ..languages import Language
from ..tools import run_ffmpeg
from .colour import VideoColour, conversion_filter, video_colour
from .probe import VideoInfo, display_rotation_deg, probe_video
from .render import check_rotation

log = logging.getLogger(__name__)

PRORES_PROFILE_HQ = 3  # prores_ks profiles: 0 proxy, 1 lt, 2 standard, 3 hq, 4 4444, 5 4444xq
PRORES_PIX_FMT = "yuv422p10le"
MASTER_AUDIO_RATE_HZ = 48_000
MASTER_AUDIO_CODEC = "pcm_s24le"
# display rotation (counter-clockwise degrees) -> the filter that makes the stored picture upright
UPRIGHT_FILTERS = {90: "transpose=cclock", 180: "hflip,vflip", 270: "transpose=clock"}
DROP_FRAME_RATES = {Fraction(30000, 1001): 2, Fraction(60000, 1001): 4}  # frame labels dropped each minute
_TIMECODE = re.compile(r"^(\d{2}):([0-5]\d):([0-5]\d)([:;])(\d{2})$")


@dataclass(frozen=True)
class AudioTrack:
    """One PCM track of the master.

    Attributes:
        path: an audio file FFmpeg reads (the mix stage's WAVs); resampled to 48 kHz if needed.
        title: the track title and handler name, e.g. ``"Spanish dub mix"``.
        language: ISO 639-2 code for the track's language tag (``"spa"``; ``"und"``: none). A MOV
            keeps only languages that have a QuickTime (Macintosh) language code (FFmpeg's
            movenc); others read back as undetermined.
    """

    path: Path
    title: str
    language: str = "und"


def stem_tracks(stems: Mapping[str, Path], language: Language) -> list[AudioTrack]:
    """The master's tracks from the mix stage's stems: ``mix`` (the dub), ``me`` (music and
    effects, language ``und``: the QuickTime language codes have no "no speech" code) and
    ``dialogue`` (the dubbed dialogue alone), in that order.

    Raises:
        InputError: a stem is missing from ``stems`` or on disk.
    """
    spec = [("mix", f"{language.name} dub mix", language.alpha3), ("me", "M&E (music and effects)", "und"),
            ("dialogue", f"{language.name} dialogue stem", language.alpha3)]
    tracks = []
    for key, title, lang in spec:
        path = stems.get(key)
        if path is None or not Path(path).is_file():
            raise InputError(f"the {key} stem is missing ({path})", "run the mix stage first (it writes mix, me and dialogue)")
        tracks.append(AudioTrack(Path(path), title, lang))
    return tracks


@dataclass(frozen=True)
class ColourTags:
    """FFmpeg names of the colour tags written on the master (``-color_primaries`` etc.)."""

    primaries: str = "bt709"
    transfer: str = "bt709"
    space: str = "bt709"
    range: str = "tv"

    @classmethod
    def of_source(cls, video: VideoInfo) -> ColourTags:
        """The source's tags where it has them, BT.709 / limited range for the ones it lacks."""
        d = cls()
        return cls(video.color_primaries or d.primaries, video.color_transfer or d.transfer,
                   video.color_space or d.space, video.color_range or d.range)

    def ffmpeg_args(self) -> list[str]:
        return ["-color_primaries", self.primaries, "-color_trc", self.transfer, "-colorspace", self.space,
                "-color_range", self.range]

    def matrix(self) -> VideoColour:
        """The Y'CbCr matrix and range these tags declare."""
        return VideoColour(self.space, self.range)


@dataclass
class BroadcastResult:
    """What :func:`render_broadcast` wrote: ``path``, its frame count and exact rate, the
    timecode (None: no tmcd track), the colour tags, the source's matrix (tagged or assumed), the
    matrix conversion applied (``"smpte170m -> bt709"``; None: the pixels kept), the rotation
    applied to the pixels and the audio track titles; ``details`` is a JSON-able summary for the
    stage manifest."""

    path: Path
    frame_count: int
    fps: Fraction
    timecode: str | None
    colour: ColourTags
    source_matrix: str
    colour_conversion: str | None
    rotation_applied_deg: int
    audio_titles: list[str]
    details: dict = field(default_factory=dict)


def check_timecode(timecode: str, fps: Fraction) -> str:
    """Validate a start timecode ``HH:MM:SS:FF`` (``HH:MM:SS;FF`` drop-frame) for ``fps``.

    Drop-frame (SMPTE ST 12-1) exists at 30000/1001 and 60000/1001 only, and skips the frame
    labels 00-01 (00-03 at 59.94) at the start of every minute not divisible by ten.

    Raises:
        ConfigError: malformed; frame label not below the nominal rate; drop-frame at another
            rate; a label drop-frame skips.
    """
    m = _TIMECODE.match(str(timecode).strip())
    if not m:
        raise ConfigError(f"timecode {timecode!r} is not HH:MM:SS:FF", "write it as 01:00:00:00 (01:00:00;00 for drop-frame)")
    hh, mm, ss, sep, ff = int(m[1]), int(m[2]), int(m[3]), m[4], int(m[5])
    nominal = round(fps)
    if ff >= nominal:
        raise ConfigError(f"timecode {timecode} has frame {ff}, but {float(fps):.3f} fps counts frames 00-{nominal - 1:02d}",
                          "use a frame number below the rate")
    if sep == ";":
        dropped = DROP_FRAME_RATES.get(Fraction(fps))
        if dropped is None:
            raise ConfigError(f"drop-frame timecode {timecode} at {float(fps):.3f} fps",
                              "drop-frame exists only at 29.97 and 59.94 fps; use ':' before the frames")
        if ss == 0 and ff < dropped and mm % 10 != 0:
            raise ConfigError(f"drop-frame timecode {timecode} names a skipped frame label",
                              f"labels 00-{dropped - 1:02d} do not exist at the start of minute {mm:02d}")
    return f"{hh:02d}:{mm:02d}:{ss:02d}{sep}{ff:02d}"


def render_broadcast(
    *,
    source: Path,
    output: Path,
    audio: Sequence[AudioTrack],
    picture: Path | None = None,
    timecode: str | None = None,
    title: str | None = None,
) -> BroadcastResult:
    """Write the broadcast master ``output`` (``.mov``), through a temp file then renamed.

    Args:
        source: the source video (its rate, colour tags, timecode and display rotation are used).
        output: the ``.mov`` to write.
        audio: the PCM tracks, the first is the default (see :func:`stem_tracks`).
        picture: the lip-synced video to encode instead of the source's stream (same frames and
            timestamps as the source, in its stored orientation); None: the source's stream.
        timecode: start timecode; None: the source's when it has one, else no timecode track.
        title: the movie title tag (None: none).

    Returns:
        A :class:`BroadcastResult` read back from the written file.

    Raises:
        ConfigError: not a ``.mov`` output, no audio track, a bad timecode.
        InputError: the source or picture has no video stream; an audio file is missing.
        StageFailed: FFmpeg failed.
    """
    source, output = Path(source), Path(output)
    if output.suffix.lower() != ".mov":
        raise ConfigError(f"a broadcast master is a QuickTime file, not {output.name}", f"name it {output.stem}.mov")
    if not audio:
        raise ConfigError("a broadcast master needs at least one audio track", "pass the dub mix (stem_tracks gives mix, M&E, dialogue)")
    for t in audio:
        if not Path(t.path).is_file():
            raise InputError(f"audio track {t.title!r}: {t.path} does not exist", "run the mix stage first")
    info = probe_video(source)
    if picture is not None:
        probe_video(picture)  # a readable video stream, or InputError
    fps = info.fps_fraction
    tc = check_timecode(timecode, fps) if timecode else (check_timecode(info.timecode, fps) if info.timecode else None)
    colour = ColourTags.of_source(info)
    src_colour = video_colour(info)
    convert = conversion_filter(src_colour, colour.matrix(), pix_fmt=PRORES_PIX_FMT)
    conversion = f"{src_colour.matrix} -> {colour.space}" if convert else None
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.stem}.tmp.mov")
    pic_rotation = info.rotation_deg if picture is None else display_rotation_deg(picture)
    upright = UPRIGHT_FILTERS.get(info.rotation_deg) if picture is not None and pic_rotation == 0 else None
    applied = pic_rotation or (info.rotation_deg if upright else 0)
    args = _ffmpeg_args(Path(picture or source), audio, fps, colour, [upright, convert], tc, title, tmp)
    run_ffmpeg(args, f"writing the broadcast master {output.name}")
    try:
        check_rotation(tmp, 0)  # upright pixels, no display matrix
    except StageFailed:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(output)
    out = probe_video(output)
    result = BroadcastResult(output, out.frame_count, out.fps_fraction, out.timecode, colour, src_colour.describe(),
                             conversion, applied, [t.title for t in audio])
    result.details = {
        "deliver": "broadcast", "video": f"prores_ks profile {PRORES_PROFILE_HQ} (HQ) {PRORES_PIX_FMT}",
        "picture": "lip-synced" if picture is not None else "source", "frames": out.frame_count,
        "source_frames": info.frame_count, "fps": out.fps, "conformed_from_vfr": info.is_vfr,
        "timecode": out.timecode, "colour": colour.__dict__, "source_matrix": src_colour.describe(),
        "colour_conversion": conversion, "rotation_applied_deg": applied,
        "audio": [{"title": t.title, "language": t.language, "codec": MASTER_AUDIO_CODEC, "sample_rate_hz": MASTER_AUDIO_RATE_HZ}
                  for t in audio],
    }
    if not info.is_vfr and out.frame_count != info.frame_count:
        log.warning("%s: %d frames written for %d in the source", output.name, out.frame_count, info.frame_count)
    return result


def _ffmpeg_args(picture: Path, audio: Sequence[AudioTrack], fps: Fraction, colour: ColourTags, filters: list[str | None],
                 timecode: str | None, title: str | None, tmp: Path) -> list[str]:
    """FFmpeg's arguments. The picture's own display matrix, if any, is applied by FFmpeg's
    autorotation (on by default when encoding; it drops the matrix); ``filters`` (None entries
    skipped) come before the tags: the upright filter for a picture stored without a display matrix
    (the lip-sync video of a rotated source), the matrix conversion."""
    args = ["-i", str(picture)]
    for t in audio:
        args += ["-i", str(t.path)]
    rate = f"{fps.numerator}/{fps.denominator}"
    # setparams tags the frames themselves: newer FFmpeg takes the encoder's colour from the frames
    setparams = (f"setparams=color_primaries={colour.primaries}:color_trc={colour.transfer}:"
                 f"colorspace={colour.space}:range={colour.range}")
    vf = ",".join(f for f in (*filters, setparams) if f)
    args += ["-map", "0:v:0", "-vf", vf, "-c:v", "prores_ks", "-profile:v", str(PRORES_PROFILE_HQ), "-vendor", "apl0",
             "-pix_fmt", PRORES_PIX_FMT, *colour.ffmpeg_args(), "-r", rate, "-fps_mode", "cfr",
             "-metadata:s:v:0", "handler_name=Video"]
    for i, t in enumerate(audio):
        args += ["-map", f"{i + 1}:a:0", f"-c:a:{i}", MASTER_AUDIO_CODEC, f"-ar:a:{i}", str(MASTER_AUDIO_RATE_HZ),
                 f"-metadata:s:a:{i}", f"title={t.title}", f"-metadata:s:a:{i}", f"handler_name={t.title}",
                 f"-metadata:s:a:{i}", f"language={t.language}", f"-disposition:a:{i}", "default" if i == 0 else "0"]
    if timecode:
        args += ["-timecode", timecode]
    args += ["-map_metadata", "-1", "-map_chapters", "-1"]
    if title:
        args += ["-metadata", f"title={title}"]
    args += ["-movflags", "+write_colr", "-f", "mov", str(tmp)]
    return args
