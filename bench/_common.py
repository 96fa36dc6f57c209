"""Shared by the bench scripts: where the test clips are, and scaled copies of a clip."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from lipdub.tools import ffmpeg_exe

TESTDATA = Path(os.environ.get("LIPDUB_TESTDATA", Path(__file__).resolve().parents[2] / "shared" / "testdata"))


def scaled_clip(src: Path, dst: Path, width: int, height: int, frames: int, *, crf: int = 20, audio: bool = False) -> Path:
    """The first ``frames`` frames of ``src`` scaled to ``width`` x ``height`` (H.264 veryfast at ``crf``;
    AAC audio kept when ``audio``) written to ``dst``."""
    audio_args = ["-c:a", "aac"] if audio else ["-an"]
    subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-y", "-v", "error", "-i", str(src), "-frames:v", str(frames),
         "-vf", f"scale={width}:{height}", "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), *audio_args, str(dst)],
        check=True,
    )
    return dst


#: English talking-head clips of ../shared/testdata that an episode is cut from (about 23 s together).
EPISODE_CLIPS = ("th2_retalking_face1.mp4", "th_retalking_face5.mp4", "th_voxceleb_pcavs_00086.mp4", "pr_voxceleb_pcavs_00015.mp4")


def episode(dst: Path, duration_s: float, width: int, height: int, fps: int = 25) -> Path:
    """A talking-head "episode" of ``duration_s`` seconds at ``width`` x ``height``, ``fps``: the English
    clips of :data:`EPISODE_CLIPS` scaled to the frame height, pillar-boxed, at ``fps``, one after the
    other with their own speech (48 kHz stereo AAC), the sequence repeated and cut to the length
    (H.264 veryfast CRF 20, the repeats stream-copied). Every clip change is a cut."""
    work = dst.with_suffix(".parts")
    work.mkdir(parents=True, exist_ok=True)
    inputs, chains = [], []
    for k, name in enumerate(EPISODE_CLIPS):
        inputs += ["-i", str(TESTDATA / name)]
        chains.append(f"[{k}:v]scale=-2:{height},pad={width}:{height}:(ow-iw)/2:0,fps={fps},setsar=1,format=yuv420p[v{k}];"
                      f"[{k}:a]aresample=48000,aformat=channel_layouts=stereo[a{k}]")
    joined = "".join(f"[v{k}][a{k}]" for k in range(len(EPISODE_CLIPS)))
    graph = ";".join(chains) + f";{joined}concat=n={len(EPISODE_CLIPS)}:v=1:a=1[v][a]"
    cycle = work / "cycle.mp4"
    subprocess.run([ffmpeg_exe(), "-nostdin", "-y", "-v", "error", *inputs, "-filter_complex", graph, "-map", "[v]", "-map", "[a]",
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-g", str(2 * fps), "-c:a", "aac", "-b:a", "128k", str(cycle)],
                   check=True)
    import av

    with av.open(str(cycle)) as c:
        cycle_s = float(c.duration / 1e6)
    repeats = int(duration_s // cycle_s) + 1
    listing = work / "list.txt"
    listing.write_text("".join(f"file '{cycle}'\n" for _ in range(repeats)))
    subprocess.run([ffmpeg_exe(), "-nostdin", "-y", "-v", "error", "-f", "concat", "-safe", "0", "-i", str(listing), "-t", f"{duration_s:.3f}",
                    "-c", "copy", str(dst)], check=True)
    return dst
