"""Stage 3 backend ``silero``: Silero VAD (snakers4/silero-vad) through the ``silero-vad`` package.

The ONNX model ``silero_vad.onnx`` ships inside the package (``silero_vad/data``) and is run with
onnxruntime on CPU; nothing is downloaded. Speech probabilities are computed on 512-sample
(32 ms) windows at 16 kHz and turned into regions by ``silero_vad.get_speech_timestamps``
(hysteresis thresholding, minimum speech / silence durations, padding), whose option names and
defaults this backend exposes.
"""

from __future__ import annotations

import logging
import math
from importlib import resources

import numpy as np

from ...audio import resample, to_mono
from ...contracts.vad import SpeechRegion
from ...errors import ConfigError, InputError, MissingWeights
from ...registry import require_module

logger = logging.getLogger(__name__)

#: The rate the detector runs at (Silero VAD supports 8 and 16 kHz; lipdub's analysis audio is 16 kHz).
VAD_SAMPLE_RATE_HZ = 16000
_MODEL_FILE = "silero_vad.onnx"


def _import_silero():
    """Import ``silero_vad`` without leaking its global ``torch.set_num_threads(1)``.

    ``silero_vad.model`` sets torch's intra-op thread count to 1 at import time, which would slow
    every later torch model in the process (e.g. the diarizer); the previous value is restored.
    """
    torch = require_module("torch", "torch")
    require_module("onnxruntime", "onnxruntime")
    threads = torch.get_num_threads()
    try:
        return require_module("silero_vad", "silero-vad")
    finally:
        torch.set_num_threads(threads)


def _model_available() -> str:
    try:
        ref = resources.files("silero_vad.data").joinpath(_MODEL_FILE)
        if ref.is_file():
            return str(ref)
    except (ModuleNotFoundError, FileNotFoundError):
        pass
    raise MissingWeights(
        f"Silero VAD model {_MODEL_FILE} not found in the silero-vad package",
        "reinstall silero-vad (its wheel ships the model): pip install --force-reinstall silero-vad",
    )


class SileroVad:
    """Speech regions with Silero VAD v5+ (ONNX, CPU).

    Args:
        threshold: speech probability above which a window starts speech (0..1, Silero default 0.5).
            Speech ends when the probability falls below ``threshold - 0.15``.
        min_speech_duration_ms: regions shorter than this are dropped (default 250).
        min_silence_duration_ms: a pause must last this long to end a region (default 300; Silero's
            own default is 100, longer keeps a sentence with short breath pauses in one region,
            which is what transcription and diarization want).
        speech_pad_ms: each region is widened by this much on both sides (default 100), so word
            onsets and releases are not clipped.
        max_speech_duration_s: longer regions are split, at the longest pause if there is one
            (default: no limit).

    Raises:
        ConfigError: an option is out of range.
    """

    name = "silero"

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        min_speech_duration_ms: int = 250,
        min_silence_duration_ms: int = 300,
        speech_pad_ms: int = 100,
        max_speech_duration_s: float = math.inf,
    ) -> None:
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"VAD threshold must be in (0, 1), got {threshold}", "use e.g. 0.5 (default)")
        for label, value in (
            ("min_speech_duration_ms", min_speech_duration_ms),
            ("min_silence_duration_ms", min_silence_duration_ms),
            ("speech_pad_ms", speech_pad_ms),
        ):
            if value < 0:
                raise ConfigError(f"VAD {label} must be >= 0, got {value}", "use a duration in milliseconds")
        if not max_speech_duration_s > 0:
            raise ConfigError(f"VAD max_speech_duration_s must be > 0, got {max_speech_duration_s}", "leave it unset for no limit")
        self.threshold = float(threshold)
        self.min_speech_duration_ms = int(min_speech_duration_ms)
        self.min_silence_duration_ms = int(min_silence_duration_ms)
        self.speech_pad_ms = int(speech_pad_ms)
        self.max_speech_duration_s = float(max_speech_duration_s)
        self._silero = _import_silero()
        _model_available()
        self._model = self._silero.load_silero_vad(onnx=True)

    @classmethod
    def check(cls) -> str:
        """Verify that silero-vad, onnxruntime and the bundled ONNX model are present.

        Raises:
            BackendUnavailable: silero-vad, torch or onnxruntime is not installed.
            MissingWeights: the bundled model file is missing.
        """
        silero = _import_silero()
        path = _model_available()
        version = getattr(silero, "__version__", "?")
        return f"silero-vad {version}, {path.rsplit('/', 1)[-1]} on onnxruntime CPU"

    def detect(self, audio: np.ndarray, sample_rate_hz: int) -> list[SpeechRegion]:
        """Find speech in ``audio``.

        Args:
            audio: float32 mono ``(n_samples,)`` (2-D input is averaged to mono).
            sample_rate_hz: 16000 in the pipeline; other rates are resampled to 16 kHz
                (``lipdub.audio.resample``).

        Returns:
            Sorted, disjoint :class:`SpeechRegion` list, times in seconds from the start.

        Raises:
            InputError: ``audio`` is empty or not finite.
        """
        audio = to_mono(np.asarray(audio, dtype=np.float32))
        if audio.size == 0:
            raise InputError("vad: the audio is empty", "check the extracted audio")
        if not np.all(np.isfinite(audio)):
            raise InputError("vad: the audio contains NaN or infinite samples", "check the extracted audio")
        if sample_rate_hz != VAD_SAMPLE_RATE_HZ:
            audio = resample(audio, sample_rate_hz, VAD_SAMPLE_RATE_HZ)
        torch = require_module("torch", "torch")
        self._model.reset_states()
        stamps = self._silero.get_speech_timestamps(
            torch.from_numpy(np.ascontiguousarray(audio)),
            self._model,
            threshold=self.threshold,
            sampling_rate=VAD_SAMPLE_RATE_HZ,
            min_speech_duration_ms=self.min_speech_duration_ms,
            max_speech_duration_s=self.max_speech_duration_s,
            min_silence_duration_ms=self.min_silence_duration_ms,
            speech_pad_ms=self.speech_pad_ms,
            return_seconds=False,
        )
        regions: list[SpeechRegion] = []
        for stamp in stamps:
            start_s = stamp["start"] / VAD_SAMPLE_RATE_HZ
            end_s = stamp["end"] / VAD_SAMPLE_RATE_HZ
            if regions and start_s <= regions[-1].end_s:  # padding can make neighbours touch
                regions[-1] = SpeechRegion(regions[-1].start_s, max(end_s, regions[-1].end_s))
            elif end_s > start_s:
                regions.append(SpeechRegion(start_s, end_s))
        logger.info("vad: %d speech regions, %.1f s of speech in %.1f s", len(regions), sum(r.end_s - r.start_s for r in regions), audio.size / VAD_SAMPLE_RATE_HZ)
        return regions
