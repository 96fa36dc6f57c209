"""Transcribe backend ``faster-whisper``: Whisper (Radford et al. 2022) on CTranslate2, offline.

Library: faster-whisper (SYSTRAN, https://github.com/SYSTRAN/faster-whisper). Word times come from
its cross-attention alignment (``word_timestamps=True``, the method of openai/whisper's
``timing.py``: dynamic time warping over the alignment heads). Models are resolved by
:func:`lipdub.models.resolve_whisper_model`, never downloaded.
"""

from __future__ import annotations

import logging
import zlib
from typing import Any

import numpy as np

from ...audio import resample, to_mono
from ...contracts.transcribe import Transcript, TranscriptSegment, TranscriptWord
from ...errors import BackendUnavailable, ConfigError, InputError, StageFailed
from ...models import available_whisper_models, resolve_whisper_model
from ...registry import require_module
from ...runtime import MAX_COMPRESSION_RATIO, WHISPER_TEMPERATURE, whisper_model

logger = logging.getLogger(__name__)

#: Whisper's input sample rate (openai/whisper ``audio.py`` SAMPLE_RATE).
WHISPER_SAMPLE_RATE_HZ = 16000

_DEVICES = ("cpu", "cuda", "auto")

# Whisper's codes that are not ISO 639 (openai/whisper tokenizer.py): Javanese is "jw", ISO "jv".
_ISO_TO_WHISPER = {"jv": "jw"}
_WHISPER_TO_ISO = {v: k for k, v in _ISO_TO_WHISPER.items()}


def supported_languages() -> tuple[str, ...]:
    """Language codes Whisper accepts (faster-whisper's tokenizer table; mostly ISO 639-1)."""
    tok = require_module("faster_whisper.tokenizer", "faster-whisper")
    return tuple(tok._LANGUAGE_CODES)


#: Languages decoded, most probable first, when the detected language's transcript is a repetition
#: loop (:meth:`FasterWhisperTranscriber._redetect`): Whisper base detects an English VoxCeleb
#: interview (th_voxceleb_pcavs_00086) as Welsh, p 0.89 (English 0.10), and decodes it in Welsh as
#: "ffordd yn ffordd yn ..."; in English it decodes a plain sentence.
LANGUAGE_CANDIDATES = 3


def _mostly_looping(segments: list, looped_s: float) -> bool:
    """Whether the looping segments dropped (``looped_s`` seconds) cover at least as much time as the
    kept ``segments``: the decoding is a repetition loop (openai/whisper's compression-ratio test,
    :func:`compression_ratio`) rather than speech with a loop in it."""
    kept_s = sum(max(0.0, s.end_s - s.start_s) for s in segments)
    return looped_s > 0.0 and looped_s >= kept_s


def compression_ratio(text: str) -> float:
    """Bytes of ``text`` (UTF-8) over its zlib-compressed bytes: the test of a looping decode of
    openai/whisper (``utils.compression_ratio``), here applied to one segment's text, not to the
    whole 30 s window as Whisper's fallback does (a window of natural dialogue with repeated short
    turns, "Hello. Hello.", "New Jersey" three times, scores above 2.4 as a whole). 0 for an empty text."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


class FasterWhisperTranscriber:
    """Speech to text with word timestamps, via faster-whisper.

    Keyword-only options:
        model: model name (``"base"``, ``"tiny.en"``, ``"large-v3"``...) or a CTranslate2 model
            directory; resolved offline by :func:`lipdub.models.resolve_whisper_model`.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        compute_type: CTranslate2 quantization (``"int8"``, ``"int8_float16"``, ``"float16"``,
            ``"float32"``, ``"default"``...); see https://opennmt.net/CTranslate2/quantization.html.
        beam_size: beam search width (1 = greedy).
        vad_filter: let faster-whisper skip non-speech with its bundled Silero VAD before decoding.
        cpu_threads: CTranslate2 intra-op threads (None: :func:`lipdub.runtime.model_threads`, 0: the
            library default).
        initial_prompt: text given to the decoder as previous context (names, spelling), or None.
        condition_on_previous_text: feed each window's text as the prompt of the next one
            (Whisper default True; False reduces repetition loops on long audio).

    Decoding is deterministic: beam search at temperature 0, no sampling fallback, and a segment whose
    text loops (:func:`compression_ratio` above :data:`lipdub.runtime.MAX_COMPRESSION_RATIO`) is dropped, so the
    same audio always gives the same transcript (:data:`lipdub.runtime.WHISPER_TEMPERATURE`).

    The model is loaded when the first transcriber for it is constructed and then shared by every
    transcriber of the process (:func:`lipdub.runtime.whisper_model`).

    Raises:
        ConfigError: an invalid option value.
        BackendUnavailable: faster-whisper is not installed, or ``device="cuda"`` without a GPU.
        MissingWeights: the model is not found (see :mod:`lipdub.models`).
    """

    name = "faster-whisper"

    def __init__(
        self,
        *,
        model: str = "base",
        device: str = "cpu",
        compute_type: str = "int8",
        beam_size: int = 5,
        vad_filter: bool = False,
        cpu_threads: int | None = None,
        initial_prompt: str | None = None,
        condition_on_previous_text: bool = True,
    ) -> None:
        if device not in _DEVICES:
            raise ConfigError(f"unknown device {device!r} for faster-whisper", f"use one of: {', '.join(_DEVICES)}")
        if beam_size < 1:
            raise ConfigError(f"beam_size must be >= 1, got {beam_size}", "use 5 (Whisper default) or 1 for greedy")
        if cpu_threads is not None and cpu_threads < 0:
            raise ConfigError(f"cpu_threads must be >= 0, got {cpu_threads}", "use 0 for the library default")
        require_module("faster_whisper", "faster-whisper")
        ct2 = require_module("ctranslate2", "ctranslate2")
        if device == "cuda" and ct2.get_cuda_device_count() == 0:
            raise BackendUnavailable("faster-whisper: device 'cuda' requested but no CUDA GPU is visible", "use device=\"cpu\" (the CLI always runs on the CPU)")
        self.model_name = model
        self.model_path = resolve_whisper_model(model)
        self.device = device
        self.compute_type = compute_type
        self.beam_size = beam_size
        self.vad_filter = vad_filter
        self.cpu_threads = cpu_threads
        self.initial_prompt = initial_prompt
        self.condition_on_previous_text = condition_on_previous_text
        self._model = whisper_model(self.model_path, device=device, compute_type=compute_type, cpu_threads=cpu_threads)
        logger.info("Whisper model %s from %s (%s, %s)", model, self.model_path, device, compute_type)

    @property
    def multilingual(self) -> bool:
        """False for English-only models (``*.en``)."""
        return bool(self._model.model.is_multilingual)

    @classmethod
    def check(cls) -> str:
        """Describe the Whisper models available here (without loading one).

        Raises:
            BackendUnavailable: faster-whisper is not installed.
            MissingWeights: no Whisper model is available from any source.
        """
        fw = require_module("faster_whisper", "faster-whisper")
        models = available_whisper_models()
        if not models:
            resolve_whisper_model("base")  # raises MissingWeights with the install hint
        names = ", ".join(f"{m.name} ({m.source}{'' if m.ready else ', joined on first use'})" for m in models)
        return f"faster-whisper {fw.__version__}; models: {names}"

    def _whisper_language(self, language: str | None) -> str | None:
        """``language`` as Whisper's code (``"jv"`` -> ``"jw"``), checked against the model.

        Raises:
            ConfigError: unknown to Whisper, or not English with an English-only model.
        """
        if language is None:
            return None
        language = language.strip().lower()
        language = _ISO_TO_WHISPER.get(language, language)
        codes = supported_languages()
        if language not in codes:
            raise ConfigError(
                f"Whisper does not know language {language!r}",
                f"use one of its codes, e.g. en, es, fr, de, zh, ja ({len(codes)} in all), or omit it to detect",
            )
        if not self.multilingual and language != "en":
            raise ConfigError(
                f"Whisper model {self.model_name!r} is English-only but language {language!r} was requested",
                "use a multilingual model such as base (--asr-model base)",
            )
        return language

    def transcribe(self, audio: np.ndarray, sample_rate_hz: int, language: str | None = None) -> Transcript:
        """Transcribe speech with segment and word times.

        Args:
            audio: float32 samples, ``(n,)`` mono or ``(n, ch)`` (averaged to mono); resampled to
                16 kHz (polyphase, :func:`lipdub.audio.resample`) when ``sample_rate_hz`` differs.
            sample_rate_hz: sample rate of ``audio`` in Hz.
            language: ISO 639-1 code Whisper knows (``"en"``, ``"es"``...; ``"jv"`` is mapped to
                Whisper's ``"jw"``), or None to detect it from the first 30 s (the detection
                probability is stored in the transcript).

        Returns:
            A :class:`Transcript`: segment and word times in seconds from the start of ``audio``,
            texts stripped, word ``probability`` in [0, 1], each segment's ``no_speech_prob``
            (Whisper's no-speech probability of its window).

        Raises:
            ConfigError: ``language`` unknown to Whisper, or not English with an English-only model.
            InputError: ``audio`` is empty, not 1-D/2-D, or ``sample_rate_hz`` is not positive.
            StageFailed: decoding failed inside CTranslate2.
        """
        language = self._whisper_language(language)
        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim not in (1, 2) or samples.size == 0:
            raise InputError(f"audio to transcribe must be a non-empty 1-D or 2-D array, got shape {samples.shape}", "pass mono float32 samples")
        if sample_rate_hz <= 0:
            raise InputError(f"invalid sample rate {sample_rate_hz} Hz", "pass the audio's sample rate in Hz")
        samples = to_mono(samples)
        if sample_rate_hz != WHISPER_SAMPLE_RATE_HZ:
            samples = resample(samples, sample_rate_hz, WHISPER_SAMPLE_RATE_HZ)
        segments, info, looped_s = self._decode(samples, language)
        note = None
        if language is None and _mostly_looping(segments, looped_s):
            segments, info, note = self._redetect(samples, segments, info)
        logger.info(
            "transcribed %.1f s: language %s (p=%s), %d segments",
            samples.shape[0] / WHISPER_SAMPLE_RATE_HZ,
            info.language,
            "given" if language else f"{info.language_probability:.2f}",
            len(segments),
        )
        return Transcript(
            language=_WHISPER_TO_ISO.get(info.language, info.language),
            segments=segments,
            language_probability=None if language else float(info.language_probability),
            model=self.model_name,
            language_note=note,
        )

    def _decode(self, samples: np.ndarray, language: str | None) -> tuple[list[TranscriptSegment], Any, float]:
        """One decoding of ``samples`` (16 kHz mono) in ``language`` (None: Whisper detects it): the kept
        segments, faster-whisper's ``TranscriptionInfo`` and the seconds of looping segments dropped.

        Raises:
            StageFailed: decoding failed inside CTranslate2.
        """
        try:
            segments_iter, info = self._model.transcribe(
                samples,
                language=language,
                beam_size=self.beam_size,
                word_timestamps=True,
                vad_filter=self.vad_filter,
                initial_prompt=self.initial_prompt,
                condition_on_previous_text=self.condition_on_previous_text,
                temperature=WHISPER_TEMPERATURE,  # deterministic: see lipdub.runtime.WHISPER_TEMPERATURE
            )
            raw_segments = list(segments_iter)  # decoding happens lazily, while iterating
        except RuntimeError as exc:
            raise StageFailed(f"transcribe: faster-whisper failed ({exc})", "try another --asr-model") from exc
        segments: list[TranscriptSegment] = []
        looped_s = 0.0
        for seg in raw_segments:
            text = seg.text.strip()
            if compression_ratio(text) > MAX_COMPRESSION_RATIO:
                logger.info("dropped a looping segment at %.2f s (compression ratio > %.1f): %s", seg.start, MAX_COMPRESSION_RATIO, text[:80])
                looped_s += max(0.0, float(seg.end) - float(seg.start))
                continue
            words = [
                TranscriptWord(start_s=float(w.start), end_s=float(w.end), text=w.word.strip(), probability=float(w.probability))
                for w in (seg.words or [])
                if w.word.strip()
            ]
            if not text and not words:
                continue
            segments.append(TranscriptSegment(start_s=float(seg.start), end_s=float(seg.end), text=text, words=words,
                                              no_speech_prob=round(float(seg.no_speech_prob), 4)))
        return segments, info, looped_s

    def _redetect(self, samples: np.ndarray, segments: list[TranscriptSegment], info) -> tuple[list[TranscriptSegment], Any, str | None]:
        """The detected language's transcript mostly loops: decode in the next most probable languages
        of the detection (at most :data:`LANGUAGE_CANDIDATES` in all) and keep the first that does not
        (:func:`_mostly_looping`); the detected one when every candidate loops. Returns the segments, an
        info whose ``language`` / ``language_probability`` are the kept language's, and the note of why."""
        first = info.language
        for lang, p in list(info.all_language_probs or [])[1:LANGUAGE_CANDIDATES]:
            segs, other, looped = self._decode(samples, lang)
            if not _mostly_looping(segs, looped):
                note = (f"Whisper detected {first} (p {info.language_probability:.2f}) but its transcript is a repetition loop; "
                        f"{lang} (p {p:.2f}) decodes without one: pass --from to choose")
                logger.warning("transcribe: %s", note)
                other.language, other.language_probability = lang, float(p)
                return segs, other, note
        return segments, info, None
