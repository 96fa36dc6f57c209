"""The fault corpus (issue 16): odd inputs a careless or hostile user gives the CLI, made with ffmpeg
from the shared clips at test time, each run as a ``python -m lipdub`` subprocess.

Every case must end in one of two ways:

* exit 0 with a valid output: PyAV opens and decodes every packet of it, it has sound, and it is
  not longer than its source (the case may check more: nothing dubbed over silence, the input intact);
* exit 2 with exactly one line on stderr (``error: what. what to do``) and no traceback.

Never exit 1 ("internal error"), never a traceback, never a run over :data:`RUN_TIMEOUT_S` (a
subprocess timeout, not a timing assertion). Bad options and bad transcripts must fail before the
first stage (the project's manifest gains no stage record). A project survives failures: its
finished stages are reused by the next run, also after ``kill -9`` of ``lipdub`` (whose ffmpeg child
must die with it).

Cheap settings wherever the case allows: ``--lipsync none --separation none --speakers 1
--asr-model tiny.en --from en`` and clips of a second or two. Cases that run a whole dub on top of
what the default cases cover are marked ``slow``.

``LIPDUB_CORPUS_REPORT=FILE`` writes every case's outcome (``ok``, ``error``, ``internal``,
``traceback``, ``hang``, ``wrong-success``, ``unclear``, ``unexpected-error``) to ``FILE`` as JSON.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import pytest
from media_fixtures import ffmpeg, rotate_clip

RUN_TIMEOUT_S = 120
#: Cheapest honest settings of a whole dub (no lip-sync, no separation, one speaker, tiny ASR).
FAST = ["--lipsync", "none", "--separation", "none", "--speakers", "1", "--asr-model", "tiny.en", "--from", "en", "--voice-search", "0"]
#: The same with ``--transcript`` (no speech recognizer runs, so none may be named).
IMPORT = ["--lipsync", "none", "--separation", "none", "--speakers", "1", "--from", "en", "--voice-search", "0"]
#: An output may end this much after its source: one AAC frame (1024 samples at 48 kHz) of padding.
DURATION_SLACK_S = 1024 / 48000 + 1e-3
OUTCOMES: dict[str, dict] = {}


@dataclass
class Run:
    argv: list[str]
    returncode: int | None  # None: killed at the timeout
    stdout: str
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        return [l for l in self.stderr.splitlines() if l.strip()]


def lipdub(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = RUN_TIMEOUT_S) -> Run:
    argv = [sys.executable, "-m", "lipdub", *args]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return Run(argv, None, out, err)
    return Run(argv, proc.returncode, proc.stdout, proc.stderr)


def media_problem(output: Path, source: Path | None) -> str | None:
    """Why ``output`` is not a valid dub of ``source`` (None: it is): it must open, every packet of
    it must decode, it must have an audio stream with samples, and last no longer than the source."""
    import av

    if not output.is_file():
        return f"no output file {output.name}"
    try:
        with av.open(str(output)) as c:
            if not c.streams.audio:
                return f"{output.name} has no audio stream"
            samples = 0
            for packet in c.demux(*[s for s in c.streams if s.type in ("audio", "video")]):
                for frame in packet.decode():
                    if packet.stream.type == "audio":
                        samples += frame.samples
            duration = c.duration / 1e6 if c.duration else 0.0
    except av.error.FFmpegError as exc:
        return f"{output.name} does not decode: {exc}"
    if samples == 0:
        return f"{output.name} has no audio samples"
    if source is not None:
        with av.open(str(source)) as c:
            src_duration = c.duration / 1e6 if c.duration else 0.0
        if duration > src_duration + DURATION_SLACK_S:
            return f"{output.name} lasts {duration:.3f} s, longer than its source ({src_duration:.3f} s)"
    return None


@dataclass
class Case:
    """One corpus entry: ``args(corpus)`` gives the CLI arguments; ``expect`` is ``ok`` (exit 0 with
    a valid output), ``error`` (exit 2, one line holding every one of ``words``) or ``either``;
    ``output(corpus)`` the output to validate on success and ``source(corpus)`` what it dubs;
    ``check(corpus, run)`` returns what else is wrong (None: nothing)."""

    id: str
    args: Callable[["Corpus"], list[str]]
    expect: str = "error"
    words: tuple[str, ...] = ()
    output: Callable[["Corpus"], Path] | None = None
    source: Callable[["Corpus"], Path] | None = None
    check: Callable[["Corpus", Run], str | None] | None = None
    slow: bool = False
    untouched: bool = False  # the shared project must keep its stages as they were
    cwd: Callable[["Corpus"], Path] | None = None


def classify(case: Case, run: Run, problem: str | None) -> str:
    if run.returncode is None:
        return "hang"
    if "Traceback" in run.stderr:
        return "traceback"
    if run.returncode == 0:
        return "wrong-success" if case.expect == "error" or problem else "ok"
    if run.returncode == 2:
        if case.expect == "ok":
            return "unexpected-error"
        lines = run.stderr_lines
        if len(lines) != 1 or not lines[0].startswith("error:") or any(w.lower() not in lines[0].lower() for w in case.words):
            return "unclear"
        return "error"
    if run.returncode == 1:
        return "internal"
    return f"exit-{run.returncode}"


class Corpus:
    """The odd inputs, built on first use in ``root`` from the shared clips."""

    def __init__(self, root: Path, testdata: Path) -> None:
        self.root = root
        self.testdata = testdata
        self.face = testdata / "th2_retalking_face1.mp4"

    def path(self, name: str) -> Path:
        return self.root / name

    def out(self, case_id: str) -> Path:
        d = self.root / "out" / case_id
        d.mkdir(parents=True, exist_ok=True)
        return d

    # -- media -------------------------------------------------------------------------------------
    @cached_property
    def base(self) -> Path:
        """2 s of a talking head (H.264 + AAC, moov first so that cutting its tail is a truncation)."""
        out = self.path("base.mp4")
        ffmpeg("-i", str(self.face), "-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
               "-c:a", "aac", "-ar", "48000", "-movflags", "+faststart", str(out))
        return out

    def _encode(self, name: str, *args: str, src: Path | None = None) -> Path:
        out = self.path(name)
        if not out.exists():
            ffmpeg("-i", str(src or self.face), *args, str(out))
        return out

    def clip(self, name: str, seconds: float, *vargs: str, pix_fmt: str = "yuv420p", audio: tuple[str, ...] = ("-c:a", "aac")) -> Path:
        return self._encode(name, "-t", f"{seconds}", *vargs, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", pix_fmt, *audio)

    def bytes_file(self, name: str, data: bytes) -> Path:
        p = self.path(name)
        p.write_bytes(data)
        return p

    @cached_property
    def text_mp4(self) -> Path:
        return self.bytes_file("notes.mp4", b"these are my notes, not a video\n")

    @cached_property
    def empty(self) -> Path:
        return self.bytes_file("empty.mp4", b"")

    @cached_property
    def random_bytes(self) -> Path:
        return self.bytes_file("random.mp4", random.Random(16).randbytes(300_000))

    @cached_property
    def truncated_head(self) -> Path:
        return self.bytes_file("trunc_head.mp4", self.base.read_bytes()[4096:])

    @cached_property
    def truncated_tail(self) -> Path:
        data = self.base.read_bytes()
        return self.bytes_file("trunc_tail.mp4", data[: len(data) * 6 // 10])

    @cached_property
    def corrupt_middle(self) -> Path:
        data = bytearray(self.base.read_bytes())
        mid = len(data) // 2
        data[mid:mid + 8192] = random.Random(7).randbytes(8192)
        return self.bytes_file("corrupt_mid.mp4", bytes(data))

    @cached_property
    def no_audio(self) -> Path:
        return self._encode("no_audio.mp4", "-an", "-c:v", "copy", src=self.base)

    @cached_property
    def silence(self) -> Path:
        """3 s of the talking head over digital silence."""
        out = self.path("silence.mp4")
        ffmpeg("-stream_loop", "1", "-i", str(self.base), "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo", "-map", "0:v", "-map", "1:a",
               "-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(out))
        return out

    @cached_property
    def one_frame(self) -> Path:
        return self.clip("one_frame.mp4", 1 / 30)

    @cached_property
    def short(self) -> Path:
        return self.clip("short_0.3s.mp4", 0.3)

    @cached_property
    def fps1(self) -> Path:
        return self.clip("fps1.mp4", 4, "-r", "1")

    @cached_property
    def fps120(self) -> Path:
        return self.clip("fps120.mp4", 1, "-r", "120")

    @cached_property
    def vfr(self) -> Path:
        """30 fps for the first second, then every third frame: variable frame rate."""
        return self.clip("vfr.mp4", 2, "-vf", r"select='lt(n\,30)+not(mod(n\,3))'", "-fps_mode", "vfr")

    @cached_property
    def ch8(self) -> Path:
        return self.clip("ch8.mp4", 1.5, audio=("-c:a", "aac", "-ac", "8"))

    @cached_property
    def mono8k(self) -> Path:
        return self._encode("mono8k.wav", "-t", "2", "-vn", "-ac", "1", "-ar", "8000", "-c:a", "pcm_s16le")

    @cached_property
    def two_video(self) -> Path:
        out = self.path("two_video.mp4")
        ffmpeg("-i", str(self.base), "-i", str(self.base), "-map", "0:v", "-map", "1:v", "-map", "0:a", "-c", "copy", str(out))
        return out

    def rotated(self, deg: int) -> Path:
        out = self.path(f"rot{deg}.mp4")
        return out if out.exists() else rotate_clip(self.base, out, deg)

    def sized(self, w: int, h: int, suffix: str = ".mp4") -> Path:
        pix = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"
        return self.clip(f"size{w}x{h}{suffix}", 1, "-vf", f"scale={w}:{h},setsar=1", pix_fmt=pix)

    @cached_property
    def odd_name(self) -> Path:
        """Unicode and shell metacharacters in the name (a command substitution that must not run)."""
        p = self.path("dü b $(touch PWNED) ;'q' &|`id`.mp4")
        shutil.copyfile(self.base, p)
        return p

    @cached_property
    def symlink_loop(self) -> Path:
        a, b = self.path("loop_a.mp4"), self.path("loop_b.mp4")
        for p in (a, b):
            p.unlink(missing_ok=True)
        a.symlink_to(b.name)
        b.symlink_to(a.name)
        return a

    @cached_property
    def fifo(self) -> Path:
        p = self.path("pipe.mp4")
        if not p.exists():
            os.mkfifo(p)
        return p

    @cached_property
    def base_copy(self) -> Path:
        p = self.path("mine.mp4")
        shutil.copyfile(self.base, p)
        return p

    # -- transcripts -------------------------------------------------------------------------------
    def text_file(self, name: str, text: str, encoding: str = "utf-8") -> Path:
        p = self.path(name)
        p.write_bytes(text.encode(encoding))
        return p

    @staticmethod
    def srt(cues: list[tuple[str, str, str]]) -> str:
        return "".join(f"{i}\n{a} --> {b}\n{t}\n\n" for i, (a, b, t) in enumerate(cues, start=1))

    @cached_property
    def srt_ok(self) -> Path:
        return self.text_file("ok.srt", self.srt([("00:00:00,200", "00:00:01,700", "Hello, this is a test.")]))


def _dub_out(case_id: str, suffix: str = ".es.mp4") -> Callable[[Corpus], Path]:
    def find(c: Corpus) -> Path:
        hits = sorted(p for p in c.out(case_id).glob(f"*{suffix}") if not p.name.startswith("."))
        return hits[0] if hits else c.out(case_id) / f"missing{suffix}"
    return find


def media_case(case_id: str, get: Callable[[Corpus], Path], expect: str = "error", *words: str, extra: tuple[str, ...] = (),
               suffix: str = ".es.mp4", slow: bool = False, check=None) -> Case:
    return Case(case_id, lambda c: ["dub", str(get(c)), "--to", "es", "-o", str(c.out(case_id)), *FAST, *extra], expect, words,
                output=_dub_out(case_id, suffix), source=get, slow=slow, check=check)


def _nothing_dubbed(c: Corpus, run: Run) -> str | None:
    """Pure silence: Whisper (base) makes a line up there ("You"); it must not be dubbed, and the
    translate record must say why. A run where Whisper heard nothing tests nothing: reported too."""
    project = c.out("silence") / "silence.lipdub"
    script = json.loads((project / "script.json").read_text())
    if not script["segments"]:
        return "Whisper recognized nothing in the silence: this case no longer tests the no-speech check"
    dubbed = [s for s in script["segments"] if s.get("targets", {}).get("es")]
    if dubbed:
        return f"{len(dubbed)} lines dubbed over silence: {[s['source_text'] for s in dubbed]}"
    record = json.loads((project / "manifest.json").read_text())["stages"]["translate:es"]["details"]
    said = {d["segment"] for d in record.get("not_dubbed") or []}
    if said != {s["id"] for s in script["segments"]}:
        return f"the translate record does not list every line left out: {record}"
    return None


def _no_pwned(c: Corpus, run: Run) -> str | None:
    return "a shell ran the command in the file name" if (c.root / "PWNED").exists() else None


MEDIA_CASES = [
    media_case("text-named-mp4", lambda c: c.text_mp4, "error", "not a readable media file"),
    media_case("empty", lambda c: c.empty, "error", "empty"),
    media_case("random-bytes", lambda c: c.random_bytes, "error", "not a readable media file"),
    media_case("truncated-head", lambda c: c.truncated_head, "error"),
    media_case("truncated-tail", lambda c: c.truncated_tail, "error", "truncated"),
    media_case("corrupt-middle", lambda c: c.corrupt_middle, "either", "damaged"),
    media_case("no-audio", lambda c: c.no_audio, "error", "no audio stream"),
    media_case("silence", lambda c: c.silence, "ok", extra=("--asr-model", "base"), check=_nothing_dubbed),
    media_case("one-frame", lambda c: c.one_frame, "ok"),
    media_case("short-0.3s-retrieval", lambda c: c.short, "ok", extra=("--lipsync", "retrieval"), slow=True),
    media_case("fps1-retrieval", lambda c: c.fps1, "ok", extra=("--lipsync", "retrieval"), slow=True),
    media_case("fps120", lambda c: c.fps120, "ok", slow=True),
    media_case("vfr", lambda c: c.vfr, "ok", slow=True),
    media_case("8-channels", lambda c: c.ch8, "ok", slow=True),
    media_case("8khz-mono-audio-only", lambda c: c.mono8k, "ok", suffix=".es.wav"),
    media_case("two-video-streams", lambda c: c.two_video, "ok", slow=True),
    media_case("rotate-90", lambda c: c.rotated(90), "ok", slow=True),
    media_case("rotate-270", lambda c: c.rotated(270), "ok", slow=True),
    media_case("1x1", lambda c: c.sized(1, 1), "ok", slow=True),
    media_case("2x2", lambda c: c.sized(2, 2), "ok"),
    media_case("33x17", lambda c: c.sized(33, 17), "ok", slow=True),
    media_case("4098x2", lambda c: c.sized(4098, 2), "ok", slow=True),
    media_case("351x351-retrieval", lambda c: c.sized(351, 351), "ok", extra=("--lipsync", "retrieval"), slow=True),
    media_case("4097x2-mkv", lambda c: c.sized(4097, 2, ".mkv"), "either", extra=(), suffix=".es.mp4", slow=True),
    Case("unicode-shell-name", lambda c: ["dub", str(c.odd_name), "--to", "es", "-o", str(c.out("odd-name")), *FAST], "ok",
         output=_dub_out("odd-name"), source=lambda c: c.odd_name, check=_no_pwned, cwd=lambda c: c.root),
    media_case("symlink-loop", lambda c: c.symlink_loop, "error", "symbolic link"),
    media_case("fifo", lambda c: c.fifo, "error", "fifo"),
    media_case("proc-mem", lambda c: Path("/proc/1/mem"), "error", "/proc/1/mem"),
    media_case("directory", lambda c: c.root, "error", "directory"),
    media_case("missing", lambda c: c.path("nope.mp4"), "error", "does not exist"),
]


# -- transcripts: every bad one is refused before the first stage ----------------------------------
def transcript_case(case_id: str, make: Callable[[Corpus], Path], expect: str = "error", *words: str, slow: bool = False,
                    check=None) -> Case:
    return Case(case_id, lambda c: ["dub", str(c.base), "--transcript", str(make(c)), "--to", "es", "-o", str(c.out(case_id)), *IMPORT],
                expect, words, output=_dub_out(case_id), source=lambda c: c.base, slow=slow,
                check=check or (_no_stage_ran(case_id) if expect == "error" else None))


def _no_stage_ran(case_id: str):
    def check(c: Corpus, run: Run) -> str | None:
        manifest = c.out(case_id) / "base.lipdub" / "manifest.json"
        stages = json.loads(manifest.read_text()).get("stages", {}) if manifest.exists() else {}
        return f"stages ran before the transcript was refused: {sorted(stages)}" if stages else None
    return check


def _huge_line(c: Corpus) -> Path:
    words = " ".join(random.Random(3).choice(["hello", "world", "again", "and", "then"]) for _ in range(40_000))
    return c.text_file("huge.srt", c.srt([("00:00:00,200", "00:00:01,700", words + ".")]))


def _many_lines(c: Corpus) -> Path:
    cues = [(f"00:00:0{(i // 1000) % 2},{i % 1000:03d}", f"00:00:0{(i // 1000) % 2},{i % 1000:03d}", f"Line {i}.") for i in range(20_000)]
    return c.text_file("many.srt", c.srt(cues))


TRANSCRIPT_CASES = [
    transcript_case("srt-malformed", lambda c: c.text_file("bad.srt", "1\n00:00:xx,000 -> nonsense\nHello\n\n2\nfoo\n"), "error", "srt"),
    transcript_case("srt-empty", lambda c: c.text_file("empty.srt", ""), "error"),
    transcript_case("srt-binary", lambda c: c.bytes_file("binary.srt", random.Random(5).randbytes(4000)), "error"),
    transcript_case("srt-latin1", lambda c: c.text_file("latin1.srt", Corpus.srt([("00:00:00,200", "00:00:01,700", "Café, olé, señor.")]), "latin-1"),
                    "error", "utf-8"),
    transcript_case("vtt-malformed", lambda c: c.text_file("bad.vtt", "WEBVTT\n\nthis is not a cue\n--> 00:00:01.000\n"), "error"),
    transcript_case("vtt-empty", lambda c: c.text_file("empty.vtt", "WEBVTT\n"), "error"),
    transcript_case("srt-end-before-start", lambda c: c.text_file("rev.srt", Corpus.srt([("00:00:01,500", "00:00:00,500", "Backwards.")])), "error", "cue 1"),
    transcript_case("srt-all-cues-past-end", lambda c: c.text_file("late.srt", Corpus.srt([("00:10:00,000", "00:10:02,000", "Too late.")])),
                    "error", "after the end"),
    transcript_case("srt-huge-line", _huge_line, "error", "cue 1"),
    transcript_case("srt-too-many-lines", _many_lines, "error", "cues"),
    transcript_case("srt-cue-past-end", lambda c: c.text_file("past.srt", Corpus.srt([
        ("00:00:00,200", "00:00:01,700", "Hello, this is a test."), ("00:10:00,000", "00:10:02,000", "Goodbye.")])), "ok"),
    transcript_case("srt-cue-straddles-end", lambda c: c.text_file("straddle.srt", Corpus.srt([
        ("00:00:00,200", "00:00:01,000", "Hello there."), ("00:00:01,200", "00:00:05,000", "This runs past the end.")])), "ok", slow=True),
]


# -- options and outputs, against one shared project (which must keep its stages) -----------------
def shared_case(case_id: str, extra: Callable[[Corpus], list[str]] | list[str], *words: str, expect: str = "error", check=None) -> Case:
    def args(c: Corpus) -> list[str]:
        more = extra(c) if callable(extra) else extra
        return ["dub", str(c.base), "--transcript", str(c.srt_ok), "--to", "es", "-o", str(c.out("shared")), *IMPORT, *more]
    return Case(case_id, args, expect, words, untouched=True, check=check)


def _input_intact(c: Corpus, run: Run) -> str | None:
    return None if c.base_copy.read_bytes() == c.base.read_bytes() else "the input was overwritten"


def _no_dir(name: str):
    def check(c: Corpus, run: Run) -> str | None:
        return f"{name} was created" if c.path(name).exists() else None
    return check


OPTION_CASES = [
    shared_case("speakers-0", ["--speakers", "0"], "--speakers"),
    shared_case("speakers-negative", ["--speakers", "-1"], "--speakers"),
    shared_case("speakers-1000", ["--speakers", "1000"], "--speakers"),
    shared_case("max-stretch-0", ["--max-stretch", "0"], "--max-stretch"),
    shared_case("max-attempts-0", ["--max-attempts", "0"], "--max-attempts"),
    shared_case("loudness-not-a-number", ["--loudness", "loud"], "--loudness"),
    shared_case("loudness-absurd", ["--loudness", "-500"], "-500"),
    shared_case("true-peak-positive", ["--true-peak", "6"], "6"),
    shared_case("to-unknown", ["--to", "xx"], "xx"),
    shared_case("to-empty", ["--to", ""], "--to"),
    shared_case("to-too-many", ["--to", ",".join(["es", "fr", "de", "it", "pt", "ca", "nl", "sv", "da", "fi", "pl", "cs", "ro", "hu", "el",
                                                  "tr", "ru", "uk", "ja", "zh", "ko"])], "--to"),
    shared_case("from-unknown", ["--from", "qq"], "qq"),
    shared_case("translator-unknown", ["--translator", "babelfish"], "babelfish"),
    shared_case("tts-unknown", ["--tts", "robot"], "robot"),
    shared_case("lipsync-unknown", ["--lipsync", "magic"], "magic"),
    shared_case("separation-unknown", ["--separation", "sieve"], "sieve"),
    shared_case("deliver-unknown", ["--deliver", "pigeon"], "pigeon"),
    shared_case("timecode-garbage", ["--timecode", "soon"], "soon"),
    shared_case("asr-model-with-transcript", ["--asr-model", "base"], "--asr-model"),
    Case("asr-model-missing", lambda c: ["dub", str(c.base), "--to", "es", "-o", str(c.out("asr-missing")), *FAST,
                                         "--asr-model", str(c.path("no-such-model"))], "error", ("no-such-model",),
         check=lambda c, run: _no_stage_ran("asr-missing")(c, run)),
    shared_case("voice-dir-missing", lambda c: ["--voice-dir", str(c.path("no-voices"))], "no-voices"),
    shared_case("glossary-missing", lambda c: ["--glossary", str(c.path("no-terms.csv"))], "no-terms.csv"),
    shared_case("transcript-missing", lambda c: ["--transcript", str(c.path("no-subs.srt"))], "no-subs.srt"),
    shared_case("project-is-a-file", lambda c: ["--project", str(c.text_mp4)], "--project"),
    shared_case("output-unknown-suffix", lambda c: ["-o", str(c.path("x.txt"))], ".txt", check=_no_dir("x.txt")),
    shared_case("output-in-proc", ["-o", "/proc/x.mp4"], "/proc"),
    shared_case("output-in-sys", ["-o", "/sys/x.mp4"], "/sys"),
    shared_case("output-inside-a-file", lambda c: ["-o", str(c.text_mp4 / "x.mp4")], "notes.mp4"),
    Case("output-is-the-input", lambda c: ["dub", str(c.base_copy), "--to", "es", "-o", str(c.base_copy), *FAST], "error",
         ("input",), check=_input_intact),
    Case("output-is-a-link-to-the-input", lambda c: ["dub", str(c.base_copy), "--to", "es", "-o", str(_link(c, "link.mp4", c.base_copy)), *FAST],
         "error", ("input",), check=_input_intact),
    Case("project-contains-the-input", lambda c: ["dub", str(c.base_copy), "--to", "es", "-o", str(c.out("pc")), "--project", str(c.root), *FAST],
         "error", ("--project",), check=_input_intact),
    Case("transcript-would-be-overwritten", lambda c: ["dub", str(c.base), "--transcript", str(_copy(c, c.srt_ok, "talk.es.srt")), "--to", "es",
                                                     "-o", str(c.path("talk.es.mp4")), *IMPORT], "error", ("talk.es.srt",)),
    Case("lipsync-text-as-video", lambda c: ["lipsync", str(c.text_mp4), str(c.base), "-o", str(c.out("ls") / "x.mp4")], "error",
         ("not a readable media file",)),
    Case("lipsync-text-as-audio", lambda c: ["lipsync", str(c.base), str(c.text_mp4), "-o", str(c.out("ls2") / "x.mp4")], "error",
         ("not a readable media file",)),
    Case("qc-unknown-language", lambda c: ["qc", str(c.base), "--language", "xx", "--no-vmaf"], "error", ("xx",)),
    Case("qc-text-as-video", lambda c: ["qc", str(c.text_mp4), "--no-vmaf"], "error", ("not a readable media file",)),
    Case("transcribe-empty", lambda c: ["transcribe", str(c.empty), "--project", str(c.out("tr") / "p")], "error", ("empty",)),
    Case("translate-not-a-project", lambda c: ["translate", str(c.out("nothing")), "--to", "es"], "error", ("not a lipdub project",)),
    Case("synthesize-not-a-project", lambda c: ["synthesize", str(c.out("nothing")), "--to", "es"], "error", ("not a lipdub project",)),
]


def _link(c: Corpus, name: str, target: Path) -> Path:
    p = c.path(name)
    if not p.is_symlink():
        p.symlink_to(target)
    return p


def _copy(c: Corpus, src: Path, name: str) -> Path:
    p = c.path(name)
    shutil.copyfile(src, p)
    return p


ALL_CASES = MEDIA_CASES + TRANSCRIPT_CASES + OPTION_CASES


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, testdata) -> Corpus:
    root = tmp_path_factory.mktemp("corpus")
    yield Corpus(root, testdata)
    report = os.environ.get("LIPDUB_CORPUS_REPORT")
    if report:
        Path(report).write_text(json.dumps(OUTCOMES, indent=1))


def _stages(manifest: Path) -> dict:
    return {k: v["output_hash"] for k, v in json.loads(manifest.read_text())["stages"].items()} if manifest.exists() else {}


@pytest.fixture(scope="module")
def shared(corpus) -> Path:
    """One finished dub that the option cases run against (they must fail before touching it)."""
    run = lipdub("dub", str(corpus.base), "--transcript", str(corpus.srt_ok), "--to", "es", "-o", str(corpus.out("shared")), *IMPORT)
    assert run.returncode == 0, run.stderr
    return corpus.out("shared") / "base.lipdub" / "manifest.json"


def _params(cases: list[Case]):
    return [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else []) for c in cases]


@pytest.mark.parametrize("case", _params(ALL_CASES))
def test_fault_case(case: Case, corpus: Corpus, request) -> None:
    before = _stages(request.getfixturevalue("shared")) if case.untouched else None
    run = lipdub(*case.args(corpus), cwd=case.cwd(corpus) if case.cwd else None)
    problem = None
    if run.returncode == 0 and case.expect != "error" and case.output is not None:
        problem = media_problem(case.output(corpus), case.source(corpus) if case.source else None)
    if problem is None and case.check is not None and run.returncode in (0, 2):
        problem = case.check(corpus, run)
    if problem is None and before is not None:
        after = _stages(request.getfixturevalue("shared"))
        if after != before:
            problem = "the shared project's stages changed"
    outcome = classify(case, run, problem)
    if problem and outcome in ("ok", "error"):
        outcome = "wrong-success" if run.returncode == 0 else "unclear"
    OUTCOMES[case.id] = {"outcome": outcome, "returncode": run.returncode, "stderr": run.stderr[-600:], "problem": problem}
    assert outcome in ("ok", "error"), f"{outcome}: {problem or ''}\nstderr:\n{run.stderr[-3000:]}"


def test_shared_project_reused(corpus: Corpus, shared: Path) -> None:
    """After every failed run against it, the shared project still holds its stages and the same
    command reuses all of them."""
    run = lipdub("dub", str(corpus.base), "--transcript", str(corpus.srt_ok), "--to", "es", "-o", str(corpus.out("shared")), *IMPORT)
    assert run.returncode == 0, run.stderr
    last = json.loads(shared.read_text())["runs"][-1]
    assert last["ran"] == [] and {"ingest", "transcribe", "synthesize:es", "render:es", "report:es"} <= set(last["skipped"])


FAKE_FFMPEG = """#!/bin/sh
# ffmpeg that hangs on real work (its pid goes to $FAKE_FFMPEG_PIDS) and answers queries
for a in "$@"; do case "$a" in -h|-filters|-version|-encoders) exec "$REAL_FFMPEG" "$@";; esac; done
echo $$ >> "$FAKE_FFMPEG_PIDS"
exec sleep 300
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_kill9_kills_ffmpeg_and_resumes(corpus: Corpus, tmp_path) -> None:
    """``kill -9`` of ``lipdub`` while its ffmpeg child works: the child dies with it, and the next
    run reuses every finished stage and completes."""
    from lipdub.tools import ffmpeg_exe

    fake, pids = tmp_path / "ffmpeg", tmp_path / "pids"
    fake.write_text(FAKE_FFMPEG)
    fake.chmod(0o755)
    env = {**os.environ, "LIPDUB_FFMPEG": str(fake), "REAL_FFMPEG": ffmpeg_exe(), "FAKE_FFMPEG_PIDS": str(pids)}
    out = tmp_path / "out"
    args = [sys.executable, "-m", "lipdub", "dub", str(corpus.mono8k), "--transcript", str(corpus.srt_ok), "--to", "es",
            "-o", str(out / "talk.m4a"), *IMPORT]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not (pids.exists() and pids.read_text().strip()) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pids.exists(), f"lipdub never started ffmpeg (exit {proc.poll()})"
        child = int(pids.read_text().split()[0])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        alive = _alive(child)
        if alive:
            os.kill(child, signal.SIGKILL)
        assert not alive, "ffmpeg kept running after lipdub was killed"
    finally:
        if proc.poll() is None:
            proc.kill()
    run = lipdub(*args[3:])
    assert run.returncode == 0, run.stderr
    manifest = json.loads((out / "mono8k.lipdub" / "manifest.json").read_text())
    last = manifest["runs"][-1]
    assert {"ingest", "vad", "transcribe", "synthesize:es", "mix:es"} <= set(last["skipped"])
    assert "render:es" in last["ran"]
    assert media_problem(out / "talk.m4a", corpus.mono8k) is None
