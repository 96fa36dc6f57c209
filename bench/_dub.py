"""Shared by the lip-sync benches: a clip's transcript, source phonemes and a Spanish espeak-ng dub.

The dub is made as the pipeline's defaults make it, stage by stage through the library (the pipeline
itself is being refactored): faster-whisper ``base`` transcript of the clip's own audio (English forced
for the English clips, since Whisper's language detection is unreliable on a few seconds), apertium
translation to Spanish (a fixed Spanish text for sources apertium cannot translate), espeak-ng speech per
segment at the rate that fills the segment, fitted into it (:func:`lipdub.timing.fit.fit_speech`,
rubberband up to 1.25x), placed at its start; the espeak phoneme events, mapped through the fit, are
the dub's phoneme timings on the output timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SR = 16000
#: Source languages of the test clips (Whisper's guess is wrong on the short VoxCeleb crops).
SOURCE_LANGUAGE = {"th2_retalking_face1.mp4": "en", "th_retalking_face5.mp4": "en", "th_voxceleb_pcavs_00086.mp4": "en",
                   "pr_voxceleb_pcavs_00015.mp4": "en", "th_latentsync_demo1_video.mp4": "ru", "th_latentsync_demo2_video.mp4": "pt"}
FALLBACK_ES = ("Buenos días a todos, me alegra mucho volver a veros en mi canal. Hoy vamos a hablar de un viaje "
               "muy bonito que hicimos el verano pasado por el norte de España, con mucha comida buena y mucha gente amable.")


@dataclass
class Dub:
    """A clip's Spanish dub: ``audio`` float32 16 kHz on the source timeline (same length as the source
    audio), ``phonemes`` [(start_s, end_s, phoneme)], ``lines`` [(start_s, end_s, text)]."""

    audio: np.ndarray
    phonemes: list[tuple[float, float, str]]
    lines: list[tuple[float, float, str]]


def transcribe(audio: np.ndarray, language: str | None):
    """faster-whisper base transcript (segments with words) of 16 kHz audio."""
    from lipdub.backends.transcribe.faster_whisper import FasterWhisperTranscriber

    return FasterWhisperTranscriber(model="base").transcribe(audio, SR, language)


def _spanish_texts(texts: list[str], source: str) -> list[str]:
    from lipdub.backends.translate.apertium import ApertiumTranslator
    from lipdub.contracts.translate import TranslationRequest
    from lipdub.errors import ConfigError
    from lipdub.languages import parse_language

    try:
        return ApertiumTranslator().translate([TranslationRequest(t) for t in texts], parse_language(source), parse_language("es"))
    except ConfigError:  # no apertium pair (ru): the same Spanish paragraph, cut to the segments' lengths
        words, out, k = FALLBACK_ES.split(), [], 0
        for t in texts:
            n = max(2, len(t.split()))
            out.append(" ".join((words * 4)[k:k + n]))
            k += n
        return out


def spanish_dub(segments, n_samples: int, source_language: str) -> Dub:
    """The dub of transcript ``segments`` (see the module docstring)."""
    from lipdub.backends.tts.espeak import EspeakTts
    from lipdub.languages import parse_language
    from lipdub.timing.fit import Slot, fit_speech

    tts, es = EspeakTts(), parse_language("es")
    segs = [s for s in segments if s.text.strip()]
    texts = _spanish_texts([s.text.strip() for s in segs], source_language)
    audio = np.zeros(n_samples, np.float32)
    phonemes, lines = [], []
    for k, (seg, text) in enumerate(zip(segs, texts)):
        if not text.strip():
            continue
        slot_s = seg.end_s - seg.start_s
        nxt = segs[k + 1].start_s if k + 1 < len(segs) else n_samples / SR
        first = tts.synthesize(text, es)
        rate = float(np.clip(first.duration_s / max(slot_s, 0.3), 0.8, 2.0))
        speech = tts.synthesize(text, es, rate=rate) if abs(rate - 1) > 0.02 else first
        fit = fit_speech(speech, Slot(seg.start_s, seg.end_s, 0.0, max(0.0, nxt - seg.end_s)), sample_rate_hz=SR)
        a = int(round(fit.placed_start_s * SR))
        x = fit.samples[: max(0, n_samples - a)]
        audio[a:a + len(x)] += x
        phonemes += [(p.start_s + fit.placed_start_s, p.end_s + fit.placed_start_s, p.phoneme) for p in fit.phonemes or []]
        lines.append((fit.placed_start_s, fit.placed_end_s, text))
    return Dub(audio, phonemes, lines)


@dataclass
class Clip:
    """A test clip with its analysis, frame times, 16 kHz audio, transcript and language."""

    path: Path
    analysis: object
    times: np.ndarray
    audio: np.ndarray
    transcript: object
    language: str

    @property
    def track(self):
        return max(self.analysis.tracks, key=lambda t: len(t.frames))


def load_clip(path: Path) -> Clip:
    """Analyse faces, read the audio and transcribe ``path``."""
    from lipdub.faces.analyze import analyze_video
    from lipdub.media.probe import decode_audio, probe, video_frame_times

    _, audio = decode_audio(path, probe(path))
    lang = SOURCE_LANGUAGE.get(path.name)
    tr = transcribe(audio, lang)
    return Clip(path, analyze_video(path), video_frame_times(path), audio, tr, lang or tr.language)


def source_phonemes(clip: Clip):
    """Phoneme timings of the clip's own speech (transcript + G2P + alignment), or None when this code
    has no aligner (the ``main`` checkout, for the before figures)."""
    try:
        from lipdub.lipsync.align import align_segments
    except ImportError:
        return None
    return align_segments(clip.audio, SR, clip.transcript.segments, clip.language).phonemes
