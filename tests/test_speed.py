"""The speed work keeps every result: the two branches of a dub run concurrently with the hooks on the
caller's thread and a killed run still resumes; the fast SSIM is skimage's; the blockwise true peak is
the whole signal's; donors on disk come back byte for byte; decoding ahead keeps order and errors; one
Whisper model per process; freed heap pages go back to the OS after each stage; a lip-synced output's faces measured on the changed frames only agree with
a full analysis of the output. Nothing here times anything (speed figures: bench/)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import threading

import numpy as np
import pytest

from lipdub.config import DubConfig
from lipdub.contracts.lipsync import Donor
from lipdub.errors import InputError
from lipdub.media.prefetch import prefetched
from lipdub.pipeline import Dubber, PipelineHooks
from lipdub.pipeline.branches import Branches
from lipdub.runtime import (MAX_AVAILABLE_THREADS, THREADS_ENV, available_threads, cpu_cores, model_threads, video_branch_busy,
                            video_branch_running)


class Recorder(PipelineHooks):
    def __init__(self) -> None:
        self.threads: set[str] = set()
        self.events: list[tuple[str, str]] = []

    def stage_started(self, stage, total=None):
        self.threads.add(threading.current_thread().name)
        self.events.append(("start", stage))

    def stage_progress(self, stage, done, total):
        self.threads.add(threading.current_thread().name)

    def stage_finished(self, stage, record, skipped):
        self.threads.add(threading.current_thread().name)
        self.events.append(("end", stage))


def test_branches_run_concurrently_and_hooks_stay_on_the_callers_thread():
    hooks = Recorder()
    b = Branches(hooks)
    audio_ready, video_ready = threading.Event(), threading.Event()
    seen = {}

    def video_stage():
        b.hooks.stage_started("faces", 2)
        audio_ready.set()
        seen["video saw audio"] = video_ready.wait(30)  # only true if the audio branch runs meanwhile
        b.hooks.stage_progress("faces", 1, 2)

    def audio_branch():
        b.submit_video(video_stage)
        assert audio_ready.wait(30)
        b.hooks.stage_started("separate", None)
        video_ready.set()
        b.wait_video()
        return "done"

    assert b.run(audio_branch) == "done"
    assert seen["video saw audio"]
    assert hooks.threads == {threading.current_thread().name}
    assert ("start", "faces") in hooks.events and ("start", "separate") in hooks.events


def test_a_hook_that_raises_in_the_video_branch_stops_both_branches():
    class Cancel(PipelineHooks):
        def stage_progress(self, stage, done, total):
            if stage == "faces":
                raise KeyboardInterrupt

    b = Branches(Cancel())
    after = []

    def video_stage():
        b.hooks.stage_progress("faces", 1, 2)
        after.append("video went on")

    def audio_branch():
        b.submit_video(video_stage)
        for _ in range(200):  # the audio branch stops at one of its next hook calls
            b.hooks.stage_progress("vad", 1, 2)
            threading.Event().wait(0.01)
        after.append("audio went on")

    with pytest.raises(KeyboardInterrupt):
        b.run(audio_branch)
    assert after == []


def test_killed_video_branch_resumes(testdata, tmp_path):
    """Interrupted inside the faces stage (the video branch) while the audio stages ran beside it: the
    finished stages are kept, faces has no record, and the next run reuses the rest and runs faces."""

    class Killer(PipelineHooks):
        def stage_progress(self, stage, done, total):
            if stage == "faces" and done >= 20:
                raise KeyboardInterrupt

    cfg = DubConfig(input=testdata / "th_voxceleb_pcavs_00086.mp4", targets=[], output=tmp_path, separation="none", speakers=1,
                    lipsync="none")
    with pytest.raises(KeyboardInterrupt):
        Dubber(cfg, Killer()).run(until="faces")
    manifest = json.loads((tmp_path / "th_voxceleb_pcavs_00086.lipdub" / "manifest.json").read_text())
    assert "ingest" in manifest["stages"] and "faces" not in manifest["stages"]
    again = Dubber(cfg)
    again.run(until="faces")
    assert "ingest" in again.skipped and {"faces", "speakers"} <= set(again.ran)


def test_ssim_map_is_skimages(testdata):
    import cv2
    from skimage.metrics import structural_similarity

    from lipdub.faces.analyze import iter_frames
    from lipdub.qc.visual import ssim_map

    frames = [rgb for i, rgb in iter_frames(testdata / "th2_retalking_face1.mp4") if i in (10, 30)]
    a, b = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames)
    ref, ref_map = structural_similarity(a, b, data_range=255, full=True)
    ours, our_map = ssim_map(a, b)
    # float32 against skimage's float64: the mean to 1e-6 (the report rounds SSIM to 5 decimals), each pixel to 1e-3
    assert ref < 0.99 and abs(ours - ref) < 1e-6 and np.abs(our_map - ref_map).max() < 1e-3
    with pytest.raises(InputError):
        ssim_map(a, b[:-1])


def test_blockwise_true_peak_is_the_whole_signals():
    from scipy.signal import resample_poly

    from lipdub import mixing

    rng = np.random.default_rng(1)
    n = 2 * mixing.TRUE_PEAK_BLOCK_SAMPLES + 12345
    x = (rng.standard_normal((n, 2)) * 0.3).astype(np.float32)
    up = np.abs(resample_poly(x, 4, 1, axis=0))[: n * 4].reshape(n, 4, 2)
    whole = np.maximum(up.max(axis=(1, 2)), np.abs(x).max(axis=1))
    assert np.array_equal(mixing._true_peak_envelope(x, 48000), whole)


def test_donor_store_gives_the_crops_back():
    from lipdub.lipsync.render import DonorStore

    rng = np.random.default_rng(2)
    store = DonorStore()
    crops = {(0, k): rng.integers(0, 256, (30 + k, 40 + 2 * k, 3), dtype=np.uint8) for k in range(5)}
    for key, rgb in crops.items():
        store.add(key, Donor(rgb, rng.random((478, 3)).astype(np.float32), (key[1], 2 * key[1])))
    try:
        assert len(store) == 5 and set(store) == set(crops)
        for key, rgb in crops.items():
            d = store[key]
            assert np.array_equal(d.rgb, rgb) and d.offset == (key[1], 2 * key[1])
    finally:
        store.close()


def test_prefetched_keeps_order_and_errors():
    assert list(prefetched(range(100), depth=3)) == list(range(100))

    def broken():
        yield 1
        raise InputError("bad frame", "re-export")

    got = []
    with pytest.raises(InputError):
        for x in prefetched(broken()):
            got.append(x)
    assert got == [1]
    it = prefetched(iter(range(10**9)), depth=2)
    assert next(it) == 0
    it.close()  # stops the producer instead of running to the end


def test_fanned_out_gives_each_consumer_its_items_and_the_errors():
    import threading

    from lipdub.media.prefetch import fanned_out

    evens, threes = fanned_out(((i, i) for i in range(200)), [set(range(0, 200, 2)), set(range(0, 200, 3))], depth=2)
    got: list = []
    t = threading.Thread(target=lambda: got.extend(k for k, _ in threes))
    t.start()
    assert [k for k, _ in evens] == list(range(0, 200, 2))
    t.join(10)
    assert got == list(range(0, 200, 3))

    def broken():
        yield 0, "a"
        yield 1, "b"
        raise InputError("bad frame", "re-export")

    a, b = fanned_out(broken(), [{0}, {0, 1, 2}])
    assert [k for k, _ in a] == [0]  # got all it wanted before the error
    got = []
    with pytest.raises(InputError):
        got.extend(k for k, _ in b)
    assert got == [0, 1]
    # a consumer that stops (or is never read) does not hold up the other one
    first, second = fanned_out(((i, i) for i in range(10**9)), [set(range(10**5)), set(range(50))], depth=1)
    first.close()
    assert [k for k, _ in second] == list(range(50))
    del first, second


def test_one_whisper_model_per_process():
    from lipdub.backends.transcribe.faster_whisper import FasterWhisperTranscriber
    from lipdub.qc.intelligibility import load_whisper

    a = FasterWhisperTranscriber(model="tiny.en")
    b = FasterWhisperTranscriber(model="tiny.en")
    assert a._model is b._model is load_whisper("tiny.en", cpu_threads=model_threads())
    assert FasterWhisperTranscriber(model="tiny.en", cpu_threads=2)._model is not a._model
    assert load_whisper("tiny.en") is load_whisper("tiny.en", cpu_threads=available_threads())


def test_models_take_the_cores_only_while_no_video_stage_runs(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    b = Branches(PipelineHooks())
    seen = {}

    def video_stage():
        seen["busy"], seen["threads"] = video_branch_busy(), available_threads()

    def audio_branch():
        b.submit_video(video_stage)
        b.wait_video()
        seen["after"] = video_branch_busy(), available_threads()

    b.run(audio_branch)
    assert seen["busy"] and seen["threads"] == 1
    assert seen["after"] == (False, min(cpu_cores(), MAX_AVAILABLE_THREADS))
    with video_branch_running():
        assert available_threads() == 1
    monkeypatch.setenv(THREADS_ENV, "3")
    assert available_threads() == 3


def test_output_faces_on_the_changed_frames_agree_with_a_full_analysis(testdata, tmp_path):
    """The report's analysis of a lip-synced output (source tracks, changed frames measured again)
    against a full analysis of the output: the mouth opening of the changed frames agrees, and the
    untouched frames keep the source's."""
    from lipdub.backends.lipsync.retrieval import RetrievalBackend
    from lipdub.faces.analyze import analyze_video
    from lipdub.lipsync.render import render_lipsync
    from lipdub.media.prefetch import fanned_out
    from lipdub.media.probe import decode_audio, probe, video_frame_times
    from lipdub.qc.output_faces import output_analysis, remeasured_frames
    from lipdub.qc.visual import (
        VisualRun,
        compare_videos,
        iter_selected_frames,
        ssim_picks,
    )

    path = testdata / "th2_retalking_face1.mp4"
    analysis = analyze_video(path)
    times = video_frame_times(path)
    _, audio = decode_audio(path, probe(path))
    _, jfk = decode_audio(testdata / "sp_en_jfk.flac", probe(testdata / "sp_en_jfk.flac"))
    dub = np.zeros_like(audio)
    dub[: len(jfk)] = jfk[: len(dub)]
    track = analysis.tracks[0]
    frames = np.arange(30, 110, dtype=np.int64)
    plan = RetrievalBackend().plan(analysis, track, frames, times, audio, dub, 16000, None)
    out = tmp_path / "dub.mp4"
    render_lipsync(path, analysis, [(plan, track)], out)
    derived = output_analysis(out, analysis, {track.id: frames}, video_frame_times(out))
    full = analyze_video(out)
    d, f = derived.tracks[0], max(full.tracks, key=lambda t: len(t.frames))
    assert derived.details["remeasured_frames"] == len(frames)
    rows = [d.index_of(int(i)) for i in frames if f.index_of(int(i)) is not None]
    frows = [f.index_of(int(i)) for i in frames if f.index_of(int(i)) is not None]
    assert len(rows) > 60
    diff = np.abs(d.mouth_opening[rows] - f.mouth_opening[frows])
    moved = np.abs(d.mouth_opening[rows] - track.mouth_opening[rows])
    assert np.median(diff) < 0.01 and np.median(diff) < 0.5 * np.median(moved)  # measured the new mouth, not the source's
    assert np.array_equal(d.landmarks_raw[:20], track.landmarks_raw[:20])  # before the changed frames: the source's
    # the report decodes the output once for these faces and the SSIM (as pictures: the SSIM converts
    # its frames whole, the faces only their region): the same figures as two decodes
    picks, wanted = ssim_picks(len(times)), set(remeasured_frames(analysis, {track.id: frames}))
    ssim_frames, face_frames = fanned_out(iter_selected_frames(out, picks | wanted, pictures=True), [picks, wanted])
    shared = VisualRun(path, out, analysis, vmaf=False, dub_frames=ssim_frames)
    again = output_analysis(out, analysis, {track.id: frames}, video_frame_times(out), frames=face_frames)
    assert np.array_equal(again.tracks[0].landmarks_raw, d.landmarks_raw)
    assert shared.result().per_frame == compare_videos(path, out, analysis, vmaf=False).per_frame
    # the faces measured on the region around them (converted alone) or on whole converted frames: the same mouth
    whole = output_analysis(out, analysis, {track.id: frames}, video_frame_times(out), frames=iter_selected_frames(out, wanted))
    assert 0 < np.abs(whole.tracks[0].mouth_opening - d.mouth_opening).max() < 0.01


def test_seeking_to_sparse_frames_gives_the_decoded_pictures(testdata):
    """A long video's sampled frames reached by seeking are the pictures sequential decoding gives."""
    import av

    from lipdub.faces.analyze import to_display
    from lipdub.media.colour import frame_to_rgb, video_colour
    from lipdub.media.probe import probe_video
    from lipdub.qc import visual

    path = testdata / "th_latentsync_demo2_video.mp4"
    picks = [3, 140, 260, 401, 499]
    colour = video_colour(probe_video(path))
    sought = dict(visual._seek_selected(path, picks, colour))
    with av.open(str(path)) as c:  # every frame decoded in order, read with the same matrix
        decoded = {i: to_display(frame_to_rgb(f, colour), getattr(f, "rotation", 0) or 0)
                   for i, f in enumerate(c.decode(c.streams.video[0])) if i in picks}
    assert sorted(sought) == picks
    assert all(np.array_equal(sought[i], decoded[i]) for i in picks)


def test_composited_frames_keep_the_decoded_pictures_outside_the_face(testdata, tmp_path):
    """Only the region the compositor changed goes back through RGB: losslessly encoded, a composited
    frame's planes outside the face box equal the source's decoded planes."""
    import av

    from lipdub.backends.lipsync.retrieval import RetrievalBackend
    from lipdub.faces.analyze import analyze_video
    from lipdub.lipsync.render import render_lipsync
    from lipdub.media.probe import decode_audio, probe, video_frame_times

    path = testdata / "th2_retalking_face1.mp4"
    analysis = analyze_video(path)
    track = analysis.tracks[0]
    _, audio = decode_audio(path, probe(path))
    frames = np.arange(40, 60, dtype=np.int64)
    plan = RetrievalBackend().plan(analysis, track, frames, video_frame_times(path), audio, audio[::-1].copy(), 16000, None)
    out = tmp_path / "lossless.mp4"
    render_lipsync(path, analysis, [(plan, track)], out, lossless=True)

    def y_planes(p):
        with av.open(str(p)) as c:
            return [f.to_ndarray(format="yuv420p")[: f.height] for f in c.decode(video=0)]

    src, dst = y_planes(path), y_planes(out)
    changed = 0
    for f in frames:
        x0, y0, x1, y1 = track.boxes[track.index_of(int(f))]
        s = (x1 - x0) * 0.6  # the compositor's region stays well inside the face box plus this margin
        keep = np.ones(src[f].shape, bool)
        keep[int(max(0, y0 - s)):int(y1 + s), int(max(0, x0 - s)):int(x1 + s)] = False
        assert np.array_equal(src[f][keep], dst[f][keep])
        changed += not np.array_equal(src[f], dst[f])
    assert changed > len(frames) // 2


_FRAGMENTED_HEAP = """
import os
from lipdub.runtime import release_memory
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
blocks = [bytes(2000) for _ in range(100_000)]  # 200 MB of malloc'd blocks (above pymalloc's 512 bytes)
kept = blocks[::64]  # one block every 128 kB stays: the heap cannot shrink from its top
del blocks
before = rss_mb()
print(release_memory(), before, rss_mb())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_freed_heap_pages_go_back_to_the_os_after_every_stage(tmp_path, monkeypatch):
    """A freed but fragmented heap is held by the process until ``release_memory`` (glibc's
    malloc_trim) gives its pages back; the stage runner calls it after every stage it runs, not after
    one it reuses."""
    out = subprocess.run([sys.executable, "-c", _FRAGMENTED_HEAP], capture_output=True, text=True, check=True).stdout.split()
    released, before_mb, after_mb = out[0] == "True", float(out[1]), float(out[2])
    assert released and before_mb > 150 and after_mb < before_mb - 150, out

    from lipdub.pipeline import runner as runner_module
    from lipdub.project import Project

    calls: list[int] = []
    monkeypatch.setattr(runner_module, "release_memory", lambda: calls.append(1) or True)

    class Noop(runner_module.Stage):
        name = "noop"

        def inputs(self, ctx):
            return [1]

        def media_s(self, ctx):
            return None

        def run(self, ctx):
            return runner_module.StageOutput([], runner_module.StageDetails())

    with Project(tmp_path / "p") as project:
        r = runner_module.StageRunner(project, PipelineHooks())
        r.run(Noop(), None)
        r.run(Noop(), None)  # fresh: reused, nothing ran
    assert r.ran == ["noop"] and r.skipped == ["noop"] and calls == [1]
