"""Checks made before any work (issue 16): what an input path is, the config's one-line errors, the
outputs that would replace the user's files, imported cues fitted to the media, lines with no speech
under them, and children that die with lipdub. The whole CLI on odd inputs: test_fault_corpus.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from lipdub.backends.transcribe.subtitles import MAX_CHARS_PER_S, MAX_LINE_CHARS, fit_to_media, import_subtitles, split_long_line
from lipdub.config import DubConfig
from lipdub.contracts.transcribe import Transcript, TranscriptSegment
from lipdub.errors import ConfigError, InputError
from lipdub.files import check_input_file, check_writable_dir
from lipdub.media.probe import probe
from lipdub.pipeline.preflight import check_outputs, check_project_dir
from lipdub.pipeline.stages.render import within_media
from lipdub.pipeline.stages.translate import NO_SPEECH_PROB_THRESHOLD, speech_check
from lipdub.script import Segment
from lipdub.subtitles import Cue


# -- what an input path is -------------------------------------------------------------------------
def test_input_kinds_are_named(tmp_path, testdata):
    loop = tmp_path / "a.mp4"
    loop.symlink_to(tmp_path / "b.mp4")
    (tmp_path / "b.mp4").symlink_to(loop)
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    dangling = tmp_path / "dangling.mp4"
    dangling.symlink_to(tmp_path / "gone.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    cases = {loop: "symbolic link loop", fifo: "FIFO", dangling: "which does not exist", empty: r"empty \(0 bytes\)",
             tmp_path: "a directory", Path("/dev/null"): "character device", tmp_path / "nope.mp4": "does not exist"}
    # a writer on the FIFO: should the check open it for reading (and block), it gets unblocked and fails
    writer = threading.Thread(target=lambda: open(fifo, "wb").close(), daemon=True)
    writer.start()
    try:
        for path, words in cases.items():
            with pytest.raises(InputError, match=words):
                check_input_file(path)
    finally:
        if writer.is_alive():  # nobody opened the FIFO (as it should be): let the writer go
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
            writer.join(5)
    with pytest.raises(InputError, match="symbolic link loop"):
        probe(loop)  # the probe goes through the same check: no RuntimeError, no blocking open of the FIFO
    assert check_input_file(testdata / "th2_retalking_face1.mp4") == testdata / "th2_retalking_face1.mp4"


def test_proc_files_are_not_called_empty():
    """/proc files report 0 bytes: they are virtual (readable) or unreadable, never "empty"."""
    with pytest.raises(InputError) as info:
        check_input_file("/proc/self/status")
    assert "virtual file" in str(info.value) and "empty" not in str(info.value)
    with pytest.raises(InputError) as info:
        check_input_file("/proc/1/mem")
    assert "cannot be read" in str(info.value) and "empty" not in str(info.value)


def test_unwritable_directories(tmp_path):
    for where in (Path("/proc/lipdub-x"), Path("/sys/lipdub-x")):
        with pytest.raises(InputError, match="cannot be written"):
            check_writable_dir(where, "-o")
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    with pytest.raises(InputError, match="is a file, not a directory"):
        check_writable_dir(afile / "sub", "-o")
    if os.geteuid() != 0:  # root writes into a 0555 directory anyway
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        with pytest.raises(InputError, match="cannot be written"):
            check_writable_dir(ro, "-o")
    check_writable_dir(tmp_path / "new" / "dir", "-o")
    assert (tmp_path / "new" / "dir").is_dir() and not list((tmp_path / "new" / "dir").iterdir())


# -- the config: one line naming the option --------------------------------------------------------
@pytest.mark.parametrize("field,value,option", [("speakers", 0, "--speakers"), ("speakers", -1, "--speakers"),
                                                ("speakers", 1000, "--speakers"), ("speakers", "many", "--speakers"),
                                                ("targets", ["es"] * 21, "--to"), ("max_stretch", "fast", "--max-stretch")])
def test_config_errors_name_the_option(field, value, option):
    with pytest.raises(ConfigError) as info:
        DubConfig(**{"input": "a.mp4", "targets": ["es"], "output": "out", field: value})
    msg = str(info.value)
    assert msg.startswith(option) and "\n" not in msg


# -- outputs and the project never replace the user's files ---------------------------------------
def test_outputs_that_replace_the_input_are_refused(tmp_path, testdata):
    src = tmp_path / "talk.mp4"
    src.write_bytes((testdata / "th2_retalking_face1.mp4").read_bytes())
    subs = tmp_path / "talk.es.srt"
    subs.write_text("1\n00:00:00,000 --> 00:00:01,000\nHi.\n")
    hard = tmp_path / "hard.mp4"
    os.link(src, hard)
    cfg = lambda out, **kw: DubConfig(input=src, targets=["es"], output=out, **kw)  # noqa: E731
    for out, words in ((src, "overwrite the input"), (hard, "overwrite the input"), (tmp_path / "talk.es.mp4", None)):
        c = cfg(out, transcript=subs)
        if words is None:  # talk.es.mp4 would write talk.es.srt: the transcript
            with pytest.raises(InputError, match="overwrite the transcript"):
                check_outputs(c, {"es": out}, "en")
        else:
            with pytest.raises(InputError, match=words):
                check_outputs(c, {"es": out}, "en")
    check_outputs(cfg(tmp_path / "out"), {"es": tmp_path / "out" / "talk.es.mp4"}, "en")  # beside it is fine
    with pytest.raises(InputError, match="holds the input"):
        check_project_dir(cfg(tmp_path / "out", project_dir=tmp_path), tmp_path)
    with pytest.raises(InputError, match="is a file"):
        check_project_dir(cfg(tmp_path / "out", project_dir=subs), subs)
    assert src.read_bytes() == (testdata / "th2_retalking_face1.mp4").read_bytes()


# -- imported cues fitted to the media -------------------------------------------------------------
def _srt(tmp_path: Path, cues: list[tuple[float, float, str]]) -> Path:
    def ts(t: float) -> str:
        ms = int(round(t * 1000))
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"
    p = tmp_path / "subs.srt"
    p.write_text("".join(f"{i}\n{ts(a)} --> {ts(b)}\n{t}\n\n" for i, (a, b, t) in enumerate(cues, 1)), encoding="utf-8")
    return p


def test_cues_past_the_end_are_dropped_or_cut(tmp_path):
    tr = import_subtitles(_srt(tmp_path, [(0.2, 1.5, "Hello there."), (1.8, 9.0, "This runs on."), (600.0, 602.0, "Much later.")]), "en")
    fitted, notes = fit_to_media(tr, 6.0)
    assert [(s.start_s, s.end_s) for s in fitted.segments] == [(0.2, 1.5), (1.8, 6.0)]
    assert len(notes) == 2 and "dropped" in notes[1] and "cut there" in notes[0]
    with pytest.raises(InputError, match="every cue starts after the end"):
        fit_to_media(import_subtitles(_srt(tmp_path, [(600.0, 602.0, "Much later.")]), "en"), 6.0)


def test_unspeakable_cues_are_refused_and_long_lines_split(tmp_path):
    huge = " ".join(["hello"] * 40_000)
    with pytest.raises(InputError, match="cue 1 holds"):
        fit_to_media(Transcript("en", [TranscriptSegment(0.2, 1.7, huge)]), 6.0)
    many = [TranscriptSegment(0.0, 0.001, f"Line number {i}.") for i in range(2000)]
    with pytest.raises(InputError, match="2000 cues hold"):
        fit_to_media(Transcript("en", many), 6.0)
    sentence = "This is one sentence of a long speech, with a clause or two in it. "
    text = (sentence * 20).strip()  # about 1300 characters over 80 s: speakable, but one line too long
    fitted, notes = fit_to_media(Transcript("en", [TranscriptSegment(10.0, 90.0, text)]), 100.0)
    parts = fitted.segments
    assert len(parts) >= 3 and all(len(p.text) <= MAX_LINE_CHARS for p in parts) and notes
    assert all(p.text.endswith(".") for p in parts)  # cut at sentence ends
    assert " ".join(p.text for p in parts) == text
    assert parts[0].start_s == 10.0 and parts[-1].end_s == 90.0
    assert all(a.end_s == b.start_s for a, b in zip(parts, parts[1:]))
    assert len(text) / 80.0 < MAX_CHARS_PER_S
    one = split_long_line(TranscriptSegment(0.0, 1.0, "short"))
    assert [s.text for s in one] == ["short"]


def test_subtitles_stay_within_the_media():
    cues = [Cue(0.0, 1.0, "a"), Cue(5.5, 6.4, "b"), Cue(5.95, 6.5, "c"), Cue(7.0, 8.0, "d")]
    assert within_media(cues, 6.0) == [Cue(0.0, 1.0, "a"), Cue(5.5, 6.0, "b")]


# -- lines with no speech under them ---------------------------------------------------------------
def test_speech_check():
    seg = lambda a, b, p=None: Segment(id=0, start_s=a, end_s=b, speaker="S", source_text="You", no_speech_prob=p)  # noqa: E731
    regions = [(1.0, 3.0)]
    assert speech_check(seg(1.2, 2.0, 0.05), regions) is None
    assert "VAD" in speech_check(seg(4.0, 5.0, 0.05), regions)
    assert "no-speech probability" in speech_check(seg(1.2, 2.0, NO_SPEECH_PROB_THRESHOLD + 0.1), regions)
    assert speech_check(seg(1.2, 2.0, None), regions) is None  # an old script without the figure: VAD only


# -- children die with lipdub ----------------------------------------------------------------------
def test_children_die_with_the_parent(tmp_path):
    """A process that ran ``sleep`` through :func:`lipdub.tools.run_child` is killed with SIGKILL:
    the sleep dies too (PR_SET_PDEATHSIG); a plain subprocess.run child would be left running."""
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux only")
    pid_file = tmp_path / "pid"
    script = textwrap.dedent(f"""
        import subprocess, sys
        from lipdub.tools import run_child
        run = run_child if sys.argv[1] == "run_child" else subprocess.run
        run(["sh", "-c", "echo $$ > {pid_file}; exec sleep 300"])
    """)
    for how, survives in (("run_child", False), ("plain", True)):
        pid_file.unlink(missing_ok=True)
        parent = subprocess.Popen([sys.executable, "-c", script, how])
        deadline = time.monotonic() + 60
        while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int(pid_file.read_text())
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        alive = _alive(child)
        if alive:
            os.kill(child, signal.SIGKILL)
        assert alive == survives, how


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_a_directory_with_a_dot_holds_its_project(tmp_path):
    """``-o take.2`` (an existing directory whose name has a dot) receives the outputs and the project
    alike; ``-o talk.es.mp4`` is a file whose project goes beside it; ``-o notes.txt`` is refused."""
    from lipdub.layout import default_project_dir, output_paths

    take = tmp_path / "take.2"
    take.mkdir()
    cfg = DubConfig(input=tmp_path / "talk.mp4", targets=["es"], output=take)
    assert output_paths(cfg, True, ["es"])["es"].parent == take == default_project_dir(cfg).parent
    cfg = DubConfig(input=tmp_path / "talk.mp4", targets=["es"], output=tmp_path / "talk.es.mp4")
    assert default_project_dir(cfg) == tmp_path / "talk.lipdub"
    with pytest.raises(ConfigError, match="not an output format"):
        output_paths(DubConfig(input=tmp_path / "talk.mp4", targets=["es"], output=tmp_path / "notes.txt"), True, ["es"])
