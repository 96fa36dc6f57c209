"""Stage 5, transcribe: source text with word timestamps (ASR, or an imported SRT/VTT)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..registry import Registry


@dataclass
class TranscriptWord:
    start_s: float
    end_s: float
    text: str
    probability: float | None = None


@dataclass
class TranscriptSegment:
    """One recognized (or imported) line; ``no_speech_prob`` is the recognizer's probability that it
    holds no speech (Whisper's, per 30 s window), None when unknown."""

    start_s: float
    end_s: float
    text: str
    words: list[TranscriptWord] = field(default_factory=list)
    no_speech_prob: float | None = None


@dataclass
class Transcript:
    """ASR output. ``language`` is an ISO 639-1 code; ``language_probability`` None when given by the
    user; ``language_note``: why the language kept is not the one the recognizer detected first (None:
    it is)."""

    language: str
    segments: list[TranscriptSegment]
    language_probability: float | None = None
    model: str | None = None
    language_note: str | None = None


class Transcriber(Protocol):
    name: str

    def transcribe(self, audio: np.ndarray, sample_rate_hz: int, language: str | None = None) -> Transcript:
        """``audio``: float32 mono 16 kHz. ``language`` None = detect it."""
        ...


TRANSCRIBERS: Registry[Transcriber] = Registry("transcribe")
TRANSCRIBERS.register("faster-whisper", "lipdub.backends.transcribe.faster_whisper:FasterWhisperTranscriber", "faster-whisper (CTranslate2), bundled base/tiny.en weights")
