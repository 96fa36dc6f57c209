"""Process-wide run-time settings: how many threads each model's own thread pool may use, and the
models loaded once per process and kept warm across stages and languages.

Threads: a dub runs its video branch (faces, lip-sync) beside its audio branch (separation, VAD,
diarization, ASR, TTS) on the machine's cores, so every model library gets ``model_threads()``
intra-op threads (default 1; ``$LIPDUB_THREADS`` overrides it). Measured on the 2-core development
machine under load (other jobs running): resemblyzer's LSTM on 10 s of speech took 0.96 s wall /
0.36 s CPU with torch's 2 OpenMP threads and 0.10 s wall / 0.03 s CPU with 1 (spinning OpenMP
workers that the OS preempts wait on each other); Kokoro-82M (onnxruntime) spoke 8.1 s of speech in
7.9 s wall / 3.9 s CPU with 2 spinning threads and 5.8 s wall / 2.9 s CPU with 1 thread, spinning
off. Kokoro and Whisper, whose thread pools sleep when idle, take the machine's cores when no
video-branch stage runs beside them (:func:`available_threads`). ``bench/rtf.py`` prints the whole
dub's figures.

Warm models: :func:`whisper_model` (faster-whisper, keyed by model path, device, quantization and
threads) is shared by the transcribe stage, the alignment and the per-line intelligibility check;
the resemblyzer encoder is :func:`lipdub.voice.encoder.voice_encoder`; MediaPipe's graphs are
:func:`lipdub.faces.landmarks.shared_landmarker`; DeepFilterNet's library and model archive are
loaded once by :class:`lipdub.backends.separate.dfn.DfnSeparator`.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import BackendUnavailable, ConfigError
from .registry import require_module

THREADS_ENV = "LIPDUB_THREADS"

#: Whisper decoding temperature lipdub uses everywhere (source transcription, hearing the dub, the
#: report, lip-sync alignment): 0, greedy/beam search only. faster-whisper's default falls back to
#: sampling at 0.2-1.0 when a window's decode fails its compression-ratio or log-probability test, and
#: CTranslate2's sampling generator is seeded once per thread, so the same audio was transcribed
#: differently from run to run (sp_en_2spk: WER against its STM 0.17-0.23 over four runs with the
#: fallback, 0.15 every time at 0; the clean talking-head clips gave the same text either way). A
#: dub of the same input is the same dub. The fallback's other use, dropping a looping decode, is
#: done deterministically by :data:`MAX_COMPRESSION_RATIO`.
WHISPER_TEMPERATURE = 0.0
#: A transcribed segment whose text's zlib compression ratio is above this is a repetition loop and
#: is dropped (openai/whisper's ``compression_ratio_threshold`` default, the test its fallback uses).
MAX_COMPRESSION_RATIO = 2.4
_whisper_lock = threading.Lock()
_whisper: dict[tuple, Any] = {}


def model_threads() -> int:
    """Intra-op threads per model (``$LIPDUB_THREADS``, default 1).

    Raises:
        ConfigError: ``$LIPDUB_THREADS`` is not a positive integer.
    """
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return 1
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"{THREADS_ENV}={raw!r} is not a positive integer", f"unset {THREADS_ENV} or set it to e.g. 1 or 2")
    return n


#: At most this many intra-op threads for :func:`available_threads` (the parallel loops of an
#: 82M-parameter TTS or a 74M-parameter Whisper gain little past a few threads; a studio worker's other
#: cores are better left to the next job).
MAX_AVAILABLE_THREADS = 4
_video_lock = threading.Lock()
_video_branches = 0


def cpu_cores() -> int:
    """The cores this process may run on (its CPU affinity; ``os.cpu_count()`` where that is unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def video_branch_running() -> Iterator[None]:
    """Mark a video-branch stage (faces, lip-sync) as running in this process while the block runs
    (:class:`lipdub.pipeline.branches.Branches` wraps each one), for :func:`available_threads`."""
    global _video_branches
    with _video_lock:
        _video_branches += 1
    try:
        yield
    finally:
        with _video_lock:
            _video_branches -= 1


def video_branch_busy() -> bool:
    """Whether a video-branch stage is running in this process now (:func:`video_branch_running`)."""
    with _video_lock:
        return _video_branches > 0


def available_threads() -> int:
    """Intra-op threads for a model that is loaded or called now, for the models whose thread pools
    sleep when idle (onnxruntime with spinning off: Kokoro; CTranslate2: Whisper):
    ``$LIPDUB_THREADS`` where it is set; else :func:`model_threads` (1) while a video-branch stage
    runs beside (:func:`video_branch_busy`); else the process's cores, at most
    :data:`MAX_AVAILABLE_THREADS`. The voices, synthesize and report stages of a one-language dub
    run after the faces stage and before or after the lip-sync, so they get the machine's cores.

    Measured on the 2-core development machine (``bench/model_threads.py``, one run; idle, then
    beside a busy process on the other core): Kokoro speaking the voice search's 4.9 s Spanish
    sentence 3 times, 1 thread 10.6 s wall / 10.6 s CPU, 2 threads 7.3 s / 12.9 s (1.45x), beside the
    busy process 10.4 s with either (two 1-thread syntheses side by side on one session: 7.0 s for
    two, no gain over one after the other); Whisper base hearing that speech 3 times (beam 5), 1
    thread 8.9 s, 2 threads 5.5 s (1.62x), beside the busy process 9.4 and 8.8 s. Kokoro's audio and
    Whisper's text are the same with 1 or 2 threads.

    Raises:
        ConfigError: ``$LIPDUB_THREADS`` is not a positive integer.
    """
    if os.environ.get(THREADS_ENV, "").strip() or video_branch_busy():
        return model_threads()
    return min(cpu_cores(), MAX_AVAILABLE_THREADS)


def apply_thread_policy() -> int:
    """Give torch, OpenCV and the BLAS behind numpy (threadpoolctl) :func:`model_threads` threads each,
    where they are installed; returns that number. Called by the pipeline and ``lipdub lipsync``
    before any model runs (these settings are process-wide). Measured: the compositor's batched
    3x3 ``numpy.linalg.solve`` spent most of its time in OpenBLAS's thread hand-offs with 2 threads
    on the loaded 2-core machine."""
    n = model_threads()
    if "torch" in sys.modules:
        import torch

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    else:  # torch reads it when it is first imported (importing torch here would cost a second)
        os.environ["OMP_NUM_THREADS"] = str(n)
    if "cv2" in sys.modules or _importable("cv2"):
        import cv2

        cv2.setNumThreads(n)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)
    return n


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def ort_session_options(ort: Any, threads: int | None = None) -> Any:
    """onnxruntime ``SessionOptions`` with ``threads`` intra-op threads (None: :func:`model_threads`),
    one inter-op thread and spinning off (idle pool threads sleep instead of burning the other
    branch's core)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = model_threads() if threads is None else int(threads)
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return opts


def whisper_model(path: str | os.PathLike, *, device: str = "cpu", compute_type: str = "int8", cpu_threads: int | None = None) -> Any:
    """The process-wide ``faster_whisper.WhisperModel`` for a resolved model directory (loaded on
    first use, then shared: CTranslate2 models are safe to call from several threads).

    Args:
        path: the CTranslate2 Whisper model directory (:func:`lipdub.models.resolve_whisper_model`).
        device / compute_type: as ``WhisperModel`` takes them.
        cpu_threads: intra-op threads (None: :func:`model_threads`).

    Raises:
        BackendUnavailable: faster-whisper is missing, or the directory is not a loadable model.
        ConfigError: CTranslate2 rejects ``compute_type`` on ``device``.
    """
    threads = model_threads() if cpu_threads is None else int(cpu_threads)
    key = (str(Path(path).resolve()), device, compute_type, threads)
    with _whisper_lock:
        model = _whisper.get(key)
        if model is not None:
            return model
        fw = require_module("faster_whisper", "faster-whisper")
        try:
            model = fw.WhisperModel(key[0], device=device, compute_type=compute_type, cpu_threads=threads, local_files_only=True)
        except ValueError as exc:  # CTranslate2 rejects unsupported compute types with ValueError
            raise ConfigError(f"faster-whisper cannot load {path} with compute_type={compute_type!r} on {device} ({exc})",
                              "use compute_type int8 on CPU, float16 or int8_float16 on GPU") from exc
        except RuntimeError as exc:
            raise BackendUnavailable(f"faster-whisper cannot load the model at {path} ({exc})",
                                     "check that the directory holds a complete CTranslate2 Whisper model") from exc
        _whisper[key] = model
        return model


_libc: Any = None


def release_memory() -> bool:
    """Give the C heap's free pages back to the operating system: glibc's ``malloc_trim(0)``
    (``man 3 malloc_trim``), called by the pipeline after every stage it runs. A stage's large
    temporary arrays (decoded frames, spectrograms, model activations) are freed into the arenas of
    the threads that made them, and glibc keeps those pages mapped, so without it the process's
    resident memory keeps every stage's high-water mark. Measured with ``bench/longform.py`` (1080p25,
    one run each): peak RSS 2341 MB without it, 2190 MB with it on a 4-minute episode (2149 / 1889 MB
    on a 1-minute one, trimmed from a hook); the trim itself takes about 10 ms. Returns False where the C library is not glibc (nothing is done)."""
    global _libc
    if _libc is None:
        import ctypes
        import platform

        _libc = False
        if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
            try:
                _libc = ctypes.CDLL("libc.so.6")
            except OSError:
                _libc = False
    if not _libc:
        return False
    _libc.malloc_trim(0)
    return True


def loaded_whisper_models() -> int:
    """How many Whisper models this process holds (for tests and benches)."""
    with _whisper_lock:
        return len(_whisper)
