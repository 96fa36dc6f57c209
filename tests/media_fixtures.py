"""Media that the shared clips do not cover, made from them with the ffmpeg CLI (test helpers).

Everything here calls ffmpeg directly (not lipdub's render code), so that a fixture never shares a
bug with the code it tests.
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np

from lipdub.tools import ffmpeg_exe


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-nostdin", "-y", "-v", "error", *args], check=True)


def has_display_rotation_option() -> bool:
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-h", "long"], capture_output=True, text=True).stdout
    return "-display_rotation" in out


def make_clip(src: Path, out: Path, *, seconds: float = 1.0, rate: str | None = None, size: str | None = None,
              timecode: str | None = None, colour: tuple[str, str, str] | None = None, audio: bool = True) -> Path:
    """A short H.264 (+AAC) clip of ``src``: ``rate`` ("24000/1001"), ``size`` ("262:200", a crop
    then scale keeps it non-square), a start ``timecode`` (tmcd track), colour tags ``(primaries,
    transfer, matrix)``."""
    vf = [f"scale={size}"] if size else []
    if colour:  # on the frames too: FFmpeg >= 7 takes an encoder's colour tags from its frames
        vf.append(f"setparams=color_primaries={colour[0]}:color_trc={colour[1]}:colorspace={colour[2]}")
    args = ["-i", str(src), "-t", f"{seconds}"]
    if rate:
        args += ["-r", rate]
    if vf:
        args += ["-vf", ",".join(vf)]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if colour:
        args += ["-color_primaries", colour[0], "-color_trc", colour[1], "-colorspace", colour[2]]
    if timecode:
        args += ["-timecode", timecode]
    args += ["-c:a", "aac", "-ar", "48000"] if audio else ["-an"]
    ffmpeg(*args, str(out))
    return out


def rotate_clip(stored: Path, out: Path, ccw_deg: int) -> Path:
    """``stored`` with a display matrix rotating it ``ccw_deg`` counter-clockwise (streams copied):
    ``-display_rotation`` on FFmpeg >= 6, else FFmpeg 5's ``rotate`` tag (which 5.1's muxer writes
    as a counter-clockwise matrix of that angle)."""
    if has_display_rotation_option():
        ffmpeg("-display_rotation:v:0", str(ccw_deg), "-i", str(stored), "-c", "copy", str(out))
    else:
        ffmpeg("-i", str(stored), "-c", "copy", "-metadata:s:v:0", f"rotate={ccw_deg % 360}", str(out))
    return out


def first_frame_displayed(path: Path) -> np.ndarray:
    """The first frame as RGB uint8 ``(H, W, 3)`` with the display matrix applied (PyAV's
    ``frame.rotation``, counter-clockwise, applied by ``np.rot90``)."""
    import av

    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        k = int(round((frame.rotation or 0) / 90.0)) % 4
        return np.ascontiguousarray(np.rot90(frame.to_ndarray(format="rgb24"), k))


def orientation_error(a: np.ndarray, b: np.ndarray) -> dict[int, float]:
    """Mean absolute RGB difference of ``b`` against ``a`` turned by 0/90/180/270 degrees
    counter-clockwise (inf where the shapes differ): the smallest names how ``b`` is turned."""
    errs = {}
    for k in range(4):
        r = np.rot90(a, k)
        errs[k * 90] = float(np.abs(r.astype(np.float32) - b.astype(np.float32)).mean()) if r.shape == b.shape else float("inf")
    return errs


def ffprobe_streams(path: Path) -> list[dict]:
    """ffprobe's ``-show_streams`` (with ``-count_packets``) as dicts."""
    import json
    import shutil

    exe = shutil.which("ffprobe")
    if exe is None:
        import pytest

        pytest.skip("ffprobe not installed (apt-get install ffmpeg)")
    out = subprocess.run([exe, "-v", "error", "-count_packets", "-show_streams", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["streams"]


def hstack_two_speakers(left: Path, right: Path, out: Path, *, height: int = 224, turn_s: float = 2.5) -> Path:
    """Two talking-head clips side by side (ffmpeg ``hstack``, both scaled to ``height``, square
    crops) taking turns: for ``[0, turn_s)`` the left person speaks (the first ``turn_s`` of their
    clip, picture and sound) while the right one listens (their first frame held); for
    ``[turn_s, 2 * turn_s)`` the right person speaks (the first ``turn_s`` of their clip, picture and
    sound, in sync) while the left one listens (their last spoken frame held). Video length
    ``2 * turn_s``, 25 fps; the soundtrack is mono 48 kHz, each voice silent outside its turn.

    The shared clips talk from their first to their last frame, so a held frame is the only
    listener whose mouth stays still: a face that moves its mouth here is one the dub re-animated.
    """
    dur = 2 * turn_s
    square = f"scale=-2:{height},crop={height}:{height},setsar=1,fps=25"
    fc = (f"[0:v]{square},trim=duration={turn_s},setpts=PTS-STARTPTS,tpad=stop_mode=clone:stop_duration={turn_s},"
          f"trim=duration={dur}[l];"
          f"[1:v]{square},trim=duration={turn_s},setpts=PTS-STARTPTS,tpad=start_mode=clone:start_duration={turn_s},"
          f"trim=duration={dur},setpts=PTS-STARTPTS[r];"
          "[l][r]hstack=inputs=2[v];"
          f"[0:a]aresample=48000,aformat=channel_layouts=mono,atrim=0:{turn_s},apad=whole_dur={dur}[a0];"
          f"[1:a]aresample=48000,aformat=channel_layouts=mono,atrim=0:{turn_s},asetpts=PTS-STARTPTS,"
          f"adelay={int(turn_s * 1000)}:all=1,apad=whole_dur={dur}[a1];"
          "[a0][a1]amix=inputs=2:normalize=0,atrim=0:" + f"{dur}[a]")
    ffmpeg("-stream_loop", "-1", "-i", str(left), "-stream_loop", "-1", "-i", str(right), "-filter_complex", fc,
           "-map", "[v]", "-map", "[a]", "-t", f"{dur}", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           "-c:a", "aac", str(out))
    return out


def hard_cut_repeat(src: Path, out: Path, *, seconds: float = 2.0) -> Path:
    """The first ``seconds`` of ``src`` followed by the same ``seconds`` again: a hard cut at
    ``seconds`` (the picture jumps back to the start, the sound restarts).

    Assertions for the cut test: the face tracks end at the cut frame (``seconds * fps``) and a
    new one starts after it; a dubbed line that spans the cut keeps its sync score on both sides.
    """
    fc = (f"[0:v]trim=duration={seconds},setpts=PTS-STARTPTS,fps=25[v0];[0:a]atrim=duration={seconds},asetpts=PTS-STARTPTS[a0];"
          f"[0:v]trim=duration={seconds},setpts=PTS-STARTPTS,fps=25[v1];[0:a]atrim=duration={seconds},asetpts=PTS-STARTPTS[a1];"
          "[v0][a0][v1][a1]concat=n=2:v=1:a=1[v][a]")
    ffmpeg("-i", str(src), "-filter_complex", fc, "-map", "[v]", "-map", "[a]", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", "-c:a", "aac", str(out))
    return out


def frame_rate(path: Path) -> Fraction:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return Fraction(s.guessed_rate or s.average_rate)


def decode_rgb(path: Path, matrix: str = "auto", frames: int = 4) -> np.ndarray:
    """float ``(n, H, W, 3)`` RGB of the first ``frames`` frames, decoded by the ffmpeg CLI with
    ``matrix`` (``auto``: the file's tag), limited range, exact rounding."""
    v = next(s for s in ffprobe_streams(path) if s["codec_type"] == "video")
    vf = f"scale=in_color_matrix={matrix}:in_range=tv:flags=bilinear+accurate_rnd+full_chroma_int,format=rgb24"
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-frames:v", str(frames), "-vf", vf,
                          "-f", "rawvideo", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, np.uint8).reshape(-1, int(v["height"]), int(v["width"]), 3).astype(np.float64)
