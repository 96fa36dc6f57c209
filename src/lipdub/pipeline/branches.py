"""The two branches of a dub, run concurrently: the video branch (the stages marked ``video``: faces,
lip-sync) in one thread beside the rest (the audio branch: separation, VAD, diarization, ASR, ...,
and everything that joins them) in another, on the machine's cores.

The stages stay exactly what they are: each is still run by :class:`~lipdub.pipeline.runner.StageRunner`
(its record written after its artifacts, so a killed run resumes), and the hooks are still called
from the thread that started the dub, one call at a time, in the order the stages report: a branch's
thread hands each hook call to that thread and waits for it to return (or raise). A hook that raises
(a cancelled job, a test's ``KeyboardInterrupt``) raises in the branch whose stage called it, as it
did before, and stops the other branch at its next hook call; the first error is re-raised by
:meth:`Branches.run`. A stage marked ``needs_video`` waits until the video branch has finished
every stage handed to it so far.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable

from ..runtime import video_branch_running
from .hooks import PipelineHooks


class BranchStopped(Exception):
    """Raised in a branch at its next hook call once the other branch has failed."""


class _RelayHooks(PipelineHooks):
    """Hooks that run ``target``'s methods on the owner thread (see the module docstring)."""

    def __init__(self, branches: "Branches") -> None:
        self._b = branches

    def stage_started(self, stage: str, total: int | None = None) -> None:
        self._b.call_hook("stage_started", stage, total)

    def stage_progress(self, stage: str, done: int, total: int) -> None:
        self._b.call_hook("stage_progress", stage, done, total)

    def stage_finished(self, stage, record, skipped: bool) -> None:
        self._b.call_hook("stage_finished", stage, record, skipped)


class Branches:
    """Run a dub's audio branch (``main``) and its video branch concurrently.

    Args:
        hooks: the caller's hooks; always called from the thread that calls :meth:`run`.

    Use :attr:`hooks` as the pipeline's hooks, :meth:`submit_video` to queue a video stage,
    :meth:`wait_video` before a stage that reads what the video branch makes.
    """

    def __init__(self, hooks: PipelineHooks) -> None:
        self.target = hooks
        self.hooks: PipelineHooks = _RelayHooks(self)
        self._requests: queue.Queue = queue.Queue()
        self._video: queue.Queue = queue.Queue()
        self._video_idle = threading.Condition()
        self._video_pending = 0
        self._errors: list[BaseException] = []
        self._stop = threading.Event()
        self._owner: threading.Thread | None = None

    # -- called from the branches --------------------------------------------------------------
    def call_hook(self, name: str, *args: Any) -> Any:
        if threading.current_thread() is self._owner or self._owner is None:
            return getattr(self.target, name)(*args)
        if self._stop.is_set():
            raise BranchStopped()
        fut: Future = Future()
        self._requests.put((name, args, fut))
        return fut.result()

    def submit_video(self, fn: Callable[[], Any]) -> None:
        """Queue ``fn`` (one stage run) on the video branch; it runs after what was queued before."""
        self._raise_video_error()
        with self._video_idle:
            self._video_pending += 1
        self._video.put(fn)

    def wait_video(self) -> None:
        """Block until the video branch has run everything queued; re-raise its error, if any."""
        with self._video_idle:
            while self._video_pending and not self._stop.is_set():
                self._video_idle.wait(0.1)
        self._raise_video_error()

    def settle(self) -> None:
        """Block until the video branch is idle, without raising (before a failing run lets go of
        its project: nothing may write into it afterwards)."""
        with self._video_idle:
            while self._video_pending:
                self._video_idle.wait(0.1)

    def _raise_video_error(self) -> None:
        if self._stop.is_set():
            raise BranchStopped()

    # -- the owner -------------------------------------------------------------------------------
    def run(self, main: Callable[[], Any]) -> Any:
        """Run ``main`` (the audio branch, which queues the video stages) and the video branch in two
        threads while this thread serves their hook calls; returns ``main``'s result.

        Raises:
            the first exception of either branch or of a hook (the other branch is stopped first).
        """
        self._owner = threading.current_thread()
        result: list[Any] = []
        audio = threading.Thread(target=self._guard, args=(lambda: result.append(main()),), name="lipdub-audio", daemon=True)
        video = threading.Thread(target=self._video_loop, name="lipdub-video", daemon=True)
        video.start()
        audio.start()
        try:
            self._serve(audio)
        finally:
            self._video.put(None)
        video.join()
        audio.join()
        self._owner = None
        errors = [e for e in self._errors if not isinstance(e, BranchStopped)] or self._errors
        if errors:
            raise errors[0]
        return result[0]

    def _busy(self, audio: threading.Thread) -> bool:
        with self._video_idle:
            return audio.is_alive() or self._video_pending > 0

    def _serve(self, audio: threading.Thread) -> None:
        """Answer the branches' hook calls until both are done (after a failure: with BranchStopped)."""
        while self._busy(audio) or not self._requests.empty():
            try:
                name, args, fut = self._requests.get(timeout=0.05)
            except queue.Empty:
                continue
            except KeyboardInterrupt as exc:  # Ctrl-C here: both branches stop at their next hook call
                self._fail(exc)
                continue
            if self._stop.is_set():
                fut.set_exception(BranchStopped())
                continue
            try:
                fut.set_result(getattr(self.target, name)(*args))
            except BaseException as exc:
                self._fail(exc)
                fut.set_exception(exc)

    def _fail(self, exc: BaseException) -> None:
        if not any(e is exc for e in self._errors):
            self._errors.append(exc)
        self._stop.set()

    def _guard(self, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except BaseException as exc:
            self._fail(exc)

    def _video_loop(self) -> None:
        while True:
            fn = self._video.get()
            if fn is None:
                return
            try:
                if not self._stop.is_set():
                    with video_branch_running():  # the audio branch's models take one thread meanwhile
                        fn()
            except BaseException as exc:
                self._fail(exc)
            finally:
                with self._video_idle:
                    self._video_pending -= 1
                    self._video_idle.notify_all()
