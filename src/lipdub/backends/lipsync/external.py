"""The ``external`` lip-sync backend: the user's own LatentSync, MuseTalk or Wav2Lip checkout, run by a
command template, behind lipdub's face tracks and compositor.

Per planned track, during the first decoding pass of :func:`lipdub.lipsync.render.render_lipsync`:

1. a clip is written for the tool: the frames from the first to the last planned frame, cropped to a
   square around the track's face (the union of its landmark boxes over those frames, grown by
   ``margin`` face sizes each side), so the tool sees this face and no other; H.264 crf 12 at the
   source frame rate; plus the dub's speech over the same span (16 kHz mono PCM WAV);
2. the command template runs once (``/bin/sh -c``, placeholders ``{video}``, ``{audio}``,
   ``{output}`` replaced by shell-quoted paths; ``{{``/``}}`` for literal braces);
3. during the compositing pass, the tool's output frame nearest in time to each planned frame is
   resized to the crop (the tool may change the size or frame rate: LatentSync and MuseTalk work at
   25 fps) and given to the shared compositor as a donor with the target's own landmarks: only this
   track's lower face is taken, feathered and colour matched; frames the faces stage skipped, frames
   outside the dub and every other face stay exactly as decoded; frames the tool's output does not
   reach are left untouched and counted in the plan's details.

The tool is trusted to keep the head where it was (all of LatentSync, MuseTalk and Wav2Lip paste the
generated face back in place); the landmarks of its output are not re-measured.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import string
import subprocess
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from ...contracts.faces import FaceAnalysis, FaceTrack
from ...contracts.lipsync import Donor, LipsyncPlan
from ...errors import BackendUnavailable, ConfigError, InputError, StageFailed
from ...tools import run_child

log = logging.getLogger(__name__)

PLACEHOLDERS = ("video", "audio", "output")
COMMAND_ENV = "LIPDUB_LIPSYNC_COMMAND"
DEFAULT_MARGIN = 0.5  # crop grown by this many face sizes on each side


def parse_command(template: str) -> str:
    """Validate a command template: it must use ``{video}``, ``{audio}`` and ``{output}`` and no other field.

    Raises:
        ConfigError: empty, malformed braces, a missing or an unknown placeholder.
    """
    if not template or not template.strip():
        raise ConfigError("the external lip-sync command is empty", f"pass --command 'TOOL ... {{video}} {{audio}} {{output}}' or set ${COMMAND_ENV}")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ConfigError(f"bad external lip-sync command template ({exc})", "use {video}, {audio}, {output}; write {{ and }} for literal braces") from None
    unknown = sorted({f for f in fields if f not in PLACEHOLDERS})
    if unknown:
        raise ConfigError(f"unknown placeholder {{{unknown[0]}}} in the external lip-sync command", "only {video}, {audio} and {output} are replaced")
    missing = [p for p in PLACEHOLDERS if p not in fields]
    if missing:
        raise ConfigError(f"the external lip-sync command lacks {{{missing[0]}}}", "it must contain {video}, {audio} and {output}")
    return template


def render_command(template: str, video: Path, audio: Path, output: Path) -> str:
    """The shell command line: ``template`` with shell-quoted absolute paths in its placeholders."""
    return template.format(video=shlex.quote(str(Path(video).resolve())), audio=shlex.quote(str(Path(audio).resolve())),
                           output=shlex.quote(str(Path(output).resolve())))


def crop_square(track: FaceTrack, rows: np.ndarray, width: int, height: int, margin: float = DEFAULT_MARGIN) -> tuple[int, int, int, int]:
    """Square crop (x0, y0, x1, y1), even sides, around every landmark of ``track`` at ``rows``.

    The union box of the landmarks, grown by ``margin`` times its larger side on each side, made
    square about its centre, clipped to the ``width`` x ``height`` frame (then no longer square).
    """
    lm = track.landmarks[rows, :, :2]
    x0, y0 = lm[..., 0].min(), lm[..., 1].min()
    x1, y1 = lm[..., 0].max(), lm[..., 1].max()
    side = max(x1 - x0, y1 - y0) * (1.0 + 2.0 * margin)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    bx0 = int(max(0, np.floor(cx - side / 2)))
    by0 = int(max(0, np.floor(cy - side / 2)))
    bx1 = int(min(width, np.ceil(cx + side / 2)))
    by1 = int(min(height, np.ceil(cy + side / 2)))
    bx1 -= (bx1 - bx0) % 2  # even sides for yuv420p
    by1 -= (by1 - by0) % 2
    return bx0, by0, bx1, by1


class ExternalBackend:
    """Lip-sync backend ``external``: run a user's lip-sync tool, composite its lower face.

    Args:
        command: the command template (see :func:`parse_command`); None: ``$LIPDUB_LIPSYNC_COMMAND``.
        margin: crop margin around the face, in face sizes per side (0.1-3).
        timeout_s: kill the tool after this many seconds (None: no limit).
        work_dir: where clips, audio, output and the tool's log go (None: a temporary directory,
            removed after the render; given: kept).

    Raises:
        ConfigError: no command, a bad template, margin or timeout.
    """

    name = "external"
    uses_phonemes = False  # the tool is driven by the dub's audio alone

    def __init__(self, command: str | None = None, margin: float = DEFAULT_MARGIN, timeout_s: float | None = None,
                 work_dir: str | Path | None = None) -> None:
        if command is None:
            command = os.environ.get(COMMAND_ENV)
            if not command:
                raise ConfigError("the external lip-sync backend needs a command template",
                                  f"pass --command 'TOOL ... {{video}} {{audio}} {{output}}' or set ${COMMAND_ENV} (README lists LatentSync and MuseTalk templates)")
        self.command = parse_command(command)
        if not 0.1 <= float(margin) <= 3.0:
            raise ConfigError(f"margin must be in [0.1, 3] face sizes, got {margin}", "0.5 is the default")
        if timeout_s is not None and float(timeout_s) <= 0:
            raise ConfigError(f"timeout_s must be positive, got {timeout_s}", "leave it unset for no limit")
        self.margin = float(margin)
        self.timeout_s = None if timeout_s is None else float(timeout_s)
        self.work_dir = None if work_dir is None else Path(work_dir)

    @classmethod
    def check(cls) -> str:
        """For ``lipdub doctor``: whether ``$LIPDUB_LIPSYNC_COMMAND`` is set and valid.

        Raises:
            BackendUnavailable: no command configured (``--command`` still works per run).
        """
        command = os.environ.get(COMMAND_ENV)
        if not command:
            raise BackendUnavailable(f"device and speed: your tool's; no command template in ${COMMAND_ENV}",
                                     "set it or pass --command (README: LatentSync 1.5/1.6, MuseTalk 1.5 templates)")
        parse_command(command)
        return f"device and speed: your tool's (LatentSync/MuseTalk: CUDA GPU); command: {command}"

    def plan(self, analysis: FaceAnalysis, track: FaceTrack, frames: np.ndarray, frame_times_s: np.ndarray,
             source_audio: np.ndarray, dub_audio: np.ndarray, sample_rate_hz: int,
             phonemes=None, source_phonemes=None) -> LipsyncPlan:
        """Plan ``frames`` of ``track``: the crop and span sent to the tool (run during the render).

        ``source_audio``, ``phonemes`` and ``source_phonemes`` are not used (``uses_phonemes = False``:
        the tool is driven by the dub's audio).

        Raises:
            InputError: a frame outside the track, or empty dub audio.
        """
        f = np.asarray(frames, np.int64)
        rows = f - track.start_frame
        if len(f) and (rows.min() < 0 or rows.max() >= len(track.frames)):
            raise InputError(f"frames outside face track {track.id}", "plan only frames the track covers")
        if len(f) == 0:
            return LipsyncPlan(track.id, f, None, None, {"backend": self.name})
        if len(dub_audio) == 0:
            raise InputError("the dub audio is empty", "lip-sync needs speech")
        box = crop_square(track, rows, analysis.width, analysis.height, self.margin)
        fps = Fraction(analysis.fps)
        x0, y0, x1, y1 = box
        details = {"backend": self.name, "command": self.command, "crop": f"{x1 - x0}x{y1 - y0}+{x0}+{y0}",
                   "clip_frames": int(f.max() - f.min() + 1)}
        source = ExternalDonors(self, track, f, box, fps, np.asarray(frame_times_s, np.float64),
                                np.asarray(dub_audio, np.float32), int(sample_rate_hz), details)
        return LipsyncPlan(track.id, f, None, None, details, donors=source)


class ExternalDonors:
    """:class:`lipdub.contracts.lipsync.DonorSource` of one external plan (see the module docstring)."""

    def __init__(self, backend: ExternalBackend, track: FaceTrack, frames: np.ndarray, box: tuple[int, int, int, int],
                 fps: Fraction, frame_times_s: np.ndarray, dub_audio: np.ndarray, sample_rate_hz: int,
                 details: dict | None = None) -> None:
        self.backend = backend
        self.details = details if details is not None else {}  # the plan's details: run figures land here
        self.track = track
        self.frames = frames
        self.box = box
        self.fps = fps
        self.frame_times_s = frame_times_s
        self.dub_audio = dub_audio
        self.sample_rate_hz = sample_rate_hz
        self.first, self.last = int(frames.min()), int(frames.max())
        self.missing_frames = 0
        self.tool_s = 0.0
        self._tmp: Path | None = None
        self._writer = None
        self._reader = None

    # --- first pass: write the clip, run the tool ------------------------------------------------
    def open(self, source: Path) -> None:
        import av

        if self.backend.work_dir is not None:
            self.dir = self.backend.work_dir / f"track_{self.track.id:04d}"
            self.dir.mkdir(parents=True, exist_ok=True)
        else:
            self._tmp = Path(tempfile.mkdtemp(prefix="lipdub-external-"))
            self.dir = self._tmp
        self.clip = self.dir / "clip.mp4"
        self.audio = self.dir / "audio.wav"
        self.output = self.dir / "output.mp4"
        self.output.unlink(missing_ok=True)
        x0, y0, x1, y1 = self.box
        self._writer = av.open(str(self.clip), "w")
        stream = self._writer.add_stream("libx264", rate=self.fps)
        stream.width, stream.height = x1 - x0, y1 - y0
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12", "preset": "veryfast"}
        self._stream = stream
        self._written = 0

    def frames_to_observe(self) -> np.ndarray:
        return np.arange(self.first, self.last + 1, dtype=np.int64)

    def observe(self, frame: int, rgb: np.ndarray) -> None:
        import av

        x0, y0, x1, y1 = self.box
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[y0:y1, x0:x1]), format="rgb24").reformat(format="yuv420p")
        vf.pts = self._written
        vf.time_base = Fraction(1) / self.fps
        for pkt in self._stream.encode(vf):
            self._writer.mux(pkt)
        self._written += 1

    def finish(self) -> None:
        import soundfile as sf

        for pkt in self._stream.encode():
            self._writer.mux(pkt)
        self._writer.close()
        self._writer = None
        sf.write(str(self.audio), self._clip_audio(), self.sample_rate_hz, subtype="PCM_16")
        cmd = render_command(self.backend.command, self.clip, self.audio, self.output)
        log_path = self.dir / "tool.log"
        log.info("external lip-sync: %s", cmd)
        t0 = time.perf_counter()
        with open(log_path, "wb") as logf:
            try:
                proc = run_child(["/bin/sh", "-c", cmd], stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      timeout=self.backend.timeout_s)
            except subprocess.TimeoutExpired:
                raise StageFailed(f"the external lip-sync command ran over {self.backend.timeout_s:g} s", f"see {log_path}") from None
        self.tool_s = time.perf_counter() - t0
        tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        if proc.returncode != 0:
            raise StageFailed(f"the external lip-sync command failed with exit code {proc.returncode}: {' | '.join(tail)}",
                              f"run it by hand: {cmd}")
        if not self.output.is_file() or self.output.stat().st_size == 0:
            raise StageFailed(f"the external lip-sync command wrote no {self.output.name}",
                              "the template must write its result to {output}")
        self._open_reader()

    def _clip_audio(self) -> np.ndarray:
        """The dub's speech over the clip, on the clip's constant-rate timeline (VFR sources warped)."""
        sr = self.sample_rate_hz
        n_frames = self.last - self.first + 1
        t_src = self.frame_times_s[self.first:self.last + 1]
        t_clip = np.arange(n_frames) / float(self.fps)
        n = int(round(n_frames / float(self.fps) * sr))
        start = int(round(t_src[0] * sr))
        if np.abs((t_src - t_src[0]) - t_clip).max() < 0.5 / sr:  # constant rate: a plain slice
            seg = self.dub_audio[start:start + n]
            return np.pad(seg, (0, n - len(seg))).astype(np.float32)
        tau = np.arange(n) / sr  # clip time of each output sample -> source time
        step = 1.0 / float(self.fps)
        src_t = np.interp(tau, np.append(t_clip, t_clip[-1] + step), np.append(t_src, t_src[-1] + step))
        pos = src_t * sr
        return np.interp(pos, np.arange(len(self.dub_audio)), self.dub_audio, right=0.0).astype(np.float32)

    # --- second pass: the tool's frames as donors --------------------------------------------------
    def _open_reader(self) -> None:
        import av

        try:
            self._container = av.open(str(self.output))
            stream = self._container.streams.video[0]
        except (av.error.FFmpegError, IndexError) as exc:
            raise StageFailed(f"cannot read the external tool's output {self.output} ({exc})", "check the tool writes a video to {output}") from None
        self._frames_iter = self._container.decode(stream)
        self._prev = None  # (time_s, rgb)
        self._next = self._read()
        self._t0 = None if self._next is None else self._next[0]

    def _read(self):
        frame = next(self._frames_iter, None)
        if frame is None:
            return None
        t = float(frame.time) if frame.time is not None else 0.0
        return t, frame.to_ndarray(format="rgb24")

    def _frame_at(self, clip_time_s: float) -> np.ndarray | None:
        """The output frame shown at ``clip_time_s`` (nearest presentation time; None past its end)."""
        if self._t0 is None:
            return None
        target = clip_time_s + self._t0
        while self._next is not None and (self._prev is None or self._next[0] <= target + 1e-6
                                          or abs(self._next[0] - target) < abs(self._prev[0] - target)):
            self._prev, self._next = self._next, self._read()
        if self._prev is None:
            return None
        rate = float(self.fps)
        if self._next is None and target - self._prev[0] > 0.5 / rate + 1e-6:  # past the output's last frame
            return None
        return self._prev[1]

    def donor(self, frame: int, rgb: np.ndarray):
        import cv2

        row = self.track.index_of(int(frame))
        if row is None or not self.first <= frame <= self.last:
            return None
        out = self._frame_at((frame - self.first) / float(self.fps))
        if out is None:
            self.missing_frames += 1
            return None
        x0, y0, x1, y1 = self.box
        if out.shape[:2] != (y1 - y0, x1 - x0):
            out = cv2.resize(out, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA if out.shape[0] > y1 - y0 else cv2.INTER_CUBIC)
        lm = self.track.landmarks[row].astype(np.float64).copy()
        lm[:, 0] -= x0
        lm[:, 1] -= y0
        return Donor(np.ascontiguousarray(out), lm, (x0, y0))

    def close(self) -> None:
        self.details.update({"tool_s": round(self.tool_s, 3), "frames_past_tool_output": int(self.missing_frames)})
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
            self._container = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
