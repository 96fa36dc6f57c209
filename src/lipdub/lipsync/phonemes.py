"""Phoneme timings of a dub's lines on the output timeline, shared by the lip-sync stage and the
quality report's viseme check: the TTS's own timings (``tts/<lang>/*.phonemes.json``, seconds from
the start of the fitted line) shifted to where each line is placed, or, for a TTS that gives none,
the line's known text aligned to its audio (:func:`lipdub.lipsync.align.align_text`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..audio import read_audio
from ..errors import LipdubError
from ..layout import ProjectLayout
from ..script import Script
from .align import align_text

log = logging.getLogger(__name__)

Timing = tuple[float, float, str]


def line_phonemes(root: Path, audio_rel: str, placed_start_s: float, text: str, language: str, align: bool = True) -> list[Timing]:
    """The phonemes of one fitted line (its WAV at ``audio_rel`` in the project ``root``), in output
    seconds: the TTS's timings, else (``align``) the text aligned to the line's audio; [] when neither
    can be had (logged)."""
    ph_path = root / ProjectLayout.phonemes_of(audio_rel)
    if ph_path.exists():
        return [(p["start_s"] + placed_start_s, p["end_s"] + placed_start_s, p["phoneme"]) for p in json.loads(ph_path.read_text())]
    if not align:
        return []
    samples, sr = read_audio(root / audio_rel, mono=True)
    try:
        return [(p.start_s + placed_start_s, p.end_s + placed_start_s, p.phoneme) for p in align_text(samples, sr, text, language)]
    except LipdubError as exc:
        log.warning("no phoneme timings for %s: %s", audio_rel, exc)
        return []


def dub_phonemes(root: Path, script: Script, language: str, speaker: str | None = None, align: bool = True) -> list[Timing]:
    """Phonemes of every fitted ``language`` line of ``script`` (of ``speaker`` only, when given), in
    output seconds, sorted."""
    out: list[Timing] = []
    for seg in script.segments:
        t = seg.targets.get(language)
        if (speaker is not None and seg.speaker != speaker) or t is None or t.fit is None or not t.fit.audio_path:
            continue
        out += line_phonemes(root, t.fit.audio_path, t.fit.placed_start_s, t.text, language, align)
    return sorted(out)
