"""The intelligibility group of the quality report (DESIGN.md section 4): can a viewer understand the dub?

* per line: what ASR heard of each dubbed line when the synthesize step checked it (``FitReport.hearing``
  in ``script.json``: transcript, WER against the line's text, re-syntheses, flagged), judged by the
  ``line_wer`` threshold;
* whole dub: the dub's dialogue stem (``stems/<lang>/dialogue.wav``) transcribed by Whisper forced to
  the target language, WER against the dub's own subtitles (the target lines in the order they are
  placed), judged by ``dub_wer``; and Whisper's unforced language identification on the stem, the
  probability of the target language judged by ``dub_language_p``.

The Whisper model is the project's ``--asr-model`` (the transcribe backend's), loaded offline.
"""

from __future__ import annotations

import math

import numpy as np

from ..script import Script
from .intelligibility import hear_line, load_whisper, multilingual, word_error_rate
from .model import Check, judge
from .thresholds import Thresholds, worst


def line_rows(script: Script, language: str, th: Thresholds) -> list[dict]:
    """One row per dubbed line: id, speaker, text, heard, WER, verdict, flagged, attempts, remedies tried."""
    rows = []
    for s in script.segments:
        t = s.targets.get(language)
        if t is None or t.fit is None:
            continue
        h = t.fit.hearing
        remedies = [a.remedy for a in t.fit.history if a.remedy]
        rows.append({"id": s.id, "speaker": s.speaker, "text": t.text, "heard": h.transcript if h else None,
                     "wer": h.wer if h else None, "verdict": th.line_wer.judge(h.wer if h else None),
                     "flagged": bool(h and h.flagged), "attempts": h.attempts if h else 0, "remedies": remedies,
                     "model": h.model if h else None})
    return rows


def subtitle_text(script: Script, language: str) -> str:
    """The dub's target lines in the order they are placed (the text of its subtitles)."""
    lines = []
    for s in script.segments:
        t = s.targets.get(language)
        if t is not None and t.text.strip():
            lines.append((t.fit.placed_start_s if t.fit is not None else s.start_s, t.text))
    return " ".join(text for _, text in sorted(lines, key=lambda x: x[0]))


def has_lines(script: Script, language: str) -> bool:
    """Whether ``script`` has at least one line with text in ``language`` (a dub with none gets the
    ``dub_lines`` warning, :func:`no_lines_check`, and no speech or lip-sync figures)."""
    return bool(subtitle_text(script, language).strip())


#: What the report says of a dub without a single line (the transcript heard no words).
NO_LINES_NOTE = ("the dub has no lines: the transcript found no words to translate, so nothing was dubbed; "
                 "the dub's speech and lip sync are not judged")


def no_lines_check(language: str) -> Check:
    """The ``dub_lines`` check of a dub with no lines: a warning (a person should look at the source:
    no speech, or speech the transcriber did not hear), never a pass, and not a fail of checks that
    would judge silence (WER, language probability, lip sync)."""
    return Check("intelligibility", "dub_lines", f"lines dubbed to {language}", 0.0, "lines", "warn",
                 "at least one line", "a dub with no lines is a transcript without words", NO_LINES_NOTE)


def intelligibility_section(script: Script, language: str, dialogue_16k: np.ndarray | None, whisper, th: Thresholds,
                            asr_model: str = "base") -> tuple[dict, list[Check]]:
    """The group's figures and checks. A dub with no lines (no target text in ``language``) gets the
    ``dub_lines`` warning (:func:`no_lines_check`) instead of the whole-dub WER and language checks.

    Args:
        script: the project's script (the lines and their hearing records).
        language: the dub's language (ISO 639-1).
        dialogue_16k: the dub's dialogue stem, float32 mono at 16 kHz (None: not rendered).
        whisper: a loaded faster-whisper model, or None to load ``asr_model`` here.
        asr_model: the model name (recorded; loaded when ``whisper`` is None).

    Raises:
        BackendUnavailable / MissingWeights: faster-whisper or the model is missing.
    """
    rows = line_rows(script, language, th)
    data: dict = {"lines": rows, "model": asr_model, "method": "faster-whisper forced to the target language; WER after "
                  "lipdub.qc.intelligibility.normalize_words (jiwer)"}
    heard = [r for r in rows if r["wer"] is not None]
    checks: list[Check] = []
    if heard:
        bad = [r["id"] for r in heard if r["verdict"] == "fail"]
        warned = [r["id"] for r in heard if r["verdict"] == "warn"]
        checks.append(Check("intelligibility", "line_wer", f"lines misheard by ASR: {len(bad)} fail, {len(warned)} warn "
                            f"(of {len(heard)}; {sum(r['flagged'] for r in heard)} flagged after re-synthesis)",
                            float(len(bad) + len(warned)), "lines", worst(r["verdict"] for r in heard), th.line_wer.describe(),
                            th.line_wer.source))
        data["mean_line_wer"] = round(float(np.mean([r["wer"] for r in heard])), 4)
    else:
        data["lines_note"] = "the lines were not heard when synthesized (--no-check-intelligibility or an English-only --asr-model)"
    if not has_lines(script, language):
        data["dub_note"] = NO_LINES_NOTE
        checks.append(no_lines_check(language))
        return data, checks
    if dialogue_16k is None or dialogue_16k.size == 0:
        data["dub_note"] = "no dialogue stem"
        return data, checks
    if whisper is None:
        if not multilingual(asr_model, language):
            data["dub_note"] = f"not measured: --asr-model {asr_model} is English-only"
            return data, checks
        whisper = load_whisper(asr_model)
    reference = subtitle_text(script, language)
    h = hear_line(whisper, dialogue_16k, 16000, language)
    wer = word_error_rate(reference, h.text, language)
    data.update({"dub_wer": round(wer, 4), "dub_transcript": h.text, "subtitles": reference, "detected_language": h.detected_language,
                 "detected_probability": round(h.detected_probability, 4), "language_probability": round(h.expected_probability, 4)})
    checks.append(judge("intelligibility", "dub_wer", "whole dub: WER of the dialogue stem against the subtitles", wer, th.dub_wer))
    note = "" if h.detected_language == language else f"detected {h.detected_language} (p {h.detected_probability:.2f})"
    p = h.expected_probability if math.isfinite(h.expected_probability) else None
    checks.append(judge("intelligibility", "dub_language_p", f"whole dub: Whisper's probability of {language} (unforced)", p,
                        th.dub_language_p, note))
    return data, checks
