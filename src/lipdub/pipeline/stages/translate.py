"""Stage 6, translate (per language): target text per segment, checked against its slot before synthesis.

The whole script goes through :class:`lipdub.translation.LineTranslator`: glossary terms and the
names of the transcript are kept, a sentence split across lines is translated as one and split back
by the slots, and a translator with several candidates (ctranslate2) gives the best one that fits.
Each line's record (backend, candidates with their estimated duration, budget, glossary hits, names
kept) goes to ``translate/<lang>/lines.json``.
"""

from __future__ import annotations

import logging

from ...layout import ProjectLayout as L
from ...project import sha256_file
from ...script import TargetLine
from ...timing.isochrony import estimate_line
from ...timing.slots import compute_slots
from ..context import PipelineContext
from ..lines import create_translator, line_policy, line_translator, needs_translation, shortener, source_line, text_hash, translator_name
from ..runner import Stage, StageDetails, StageOutput

log = logging.getLogger(__name__)

#: Whisper's no-speech probability from which a recognized line is taken for silence
#: (``no_speech_threshold`` of openai/whisper ``transcribe.py``). Measured with tiny.en and base on
#: the shared clips: real lines 0.001-0.22, lines made up over digital silence, music and a window's
#: end 0.73-0.95.
NO_SPEECH_PROB_THRESHOLD = 0.6
#: Least share of a recognized line's time in which the VAD found speech (the shared clips' real lines:
#: 0.54-1.0; Whisper's "You" over silence: 0).
MIN_VAD_SPEECH_FRACTION = 0.1


def speech_check(seg, regions: list[tuple[float, float]]) -> str | None:
    """Why the recognized line ``seg`` is taken for no speech, or None: the VAD found speech in
    less than :data:`MIN_VAD_SPEECH_FRACTION` of its time, or Whisper's no-speech probability is
    at least :data:`NO_SPEECH_PROB_THRESHOLD` (Whisper makes up words over silence and music)."""
    dur = max(seg.end_s - seg.start_s, 1e-3)
    speech = sum(max(0.0, min(seg.end_s, b) - max(seg.start_s, a)) for a, b in regions)
    if speech < MIN_VAD_SPEECH_FRACTION * dur:
        return f"no speech found by the VAD under it ({speech:.2f} s of {dur:.2f} s)"
    if seg.no_speech_prob is not None and seg.no_speech_prob >= NO_SPEECH_PROB_THRESHOLD:
        return f"Whisper's no-speech probability is {seg.no_speech_prob:.2f} (>= {NO_SPEECH_PROB_THRESHOLD})"
    return None


def not_dubbed_segments(ctx: PipelineContext) -> dict[int, str]:
    """Segment id -> why it is not dubbed, for recognized lines with no speech under them
    (:func:`speech_check`). Lines of an imported transcript are the user's and always dubbed; a
    line whose target text a person wrote in ``script.json`` is dubbed too."""
    transcribe = ctx.project.manifest.stages.get("transcribe")
    if transcribe is None or transcribe.backend == "import" or not ctx.layout.abs(L.VAD).exists():
        return {}
    regions = [(r["start_s"], r["end_s"]) for r in ctx.project.read_json(L.VAD)]
    code = ctx.language.code if ctx.language else None
    out = {}
    for seg in ctx.script().segments:
        t = seg.targets.get(code) if code else None
        if t is not None and (t.machine_text is None or t.edited):
            continue  # a person's line
        reason = speech_check(seg, regions)
        if reason:
            out[seg.id] = reason
    return out


class TranslateDetails(StageDetails):
    translated: list[int]
    kept: int
    shortened: list[int]
    estimated_too_long: list[int]
    glossary_hits: int | None = None
    names_kept: list[str] | None = None
    lines: str | None = None
    note: str | None = None
    not_dubbed: list[dict] | None = None  # recognized lines with no speech under them: segment, times, text, reason


class Translate(Stage):
    """Translate the lines that need it (no target yet, or the source text changed; edits are kept),
    then check each new line's estimated spoken duration (syllables / speaker rate) against its slot
    and ask a translator that can shorten for a shorter version (:func:`~lipdub.timing.isochrony.estimate_line`)."""

    name = "translate"
    version = 3  # 3: recognized lines with no speech under them are not dubbed
    per_language = True

    def inputs(self, ctx: PipelineContext) -> list:
        cfg = ctx.config
        seg_sources = [(s.id, s.source_text, s.start_s, s.end_s) for s in ctx.script().segments]
        # the model and the glossary key the cache only when given (projects made before they existed keep their records)
        extra = [str(cfg.mt_model)] if cfg.mt_model else []
        extra += [sorted(cfg.translator_options.items())] if cfg.translator_options else []
        extra += [sha256_file(cfg.glossary)] if cfg.glossary else []
        return [translator_name(ctx), ctx.source_language.code, seg_sources, sorted(not_dubbed_segments(ctx).items()), *extra]

    def force(self, ctx: PipelineContext) -> bool:
        # Target texts are not inputs (the stage writes them, people edit them): a line is translated
        # when it has no target yet or its source text changed since it was translated.
        name, skipped = translator_name(ctx), not_dubbed_segments(ctx)
        return any(needs_translation(s, ctx.language.code, name) for s in ctx.script().segments if s.id not in skipped)

    def total(self, ctx: PipelineContext) -> int | None:
        return len(ctx.script().segments)

    def media_s(self, ctx: PipelineContext) -> float | None:
        return None

    def run(self, ctx: PipelineContext) -> StageOutput:
        code, name = ctx.language.code, translator_name(ctx)
        script = ctx.script()
        segs = script.segments
        slots = compute_slots(segs, ctx.info.duration_s)
        translator = create_translator(ctx, name)
        lt = line_translator(ctx, translator, script)
        skipped = not_dubbed_segments(ctx)
        dropped = [seg for seg in segs if seg.id in skipped and seg.targets.pop(code, None) is not None]  # machine lines of an older run
        todo = {i for i, s in enumerate(segs) if needs_translation(s, code, name) and s.id not in skipped}
        records = lt.translate_lines([source_line(ctx, s, slots[s.id]) for s in segs], only=todo) if todo else [None] * len(segs)
        translated, too_long, shortened, rows = [], [], [], []
        profiles = ctx.voice_profiles()
        for i, (seg, rec) in enumerate(zip(segs, records)):
            old = seg.targets.get(code)
            if rec is None or (i not in todo and old is not None and old.edited):
                continue  # not asked for, or a person's edit in a sentence group translated again
            text = rec.text
            line = TargetLine(text=text, machine_text=text, translator=name, source_hash=text_hash(seg.source_text),
                              duration_budget_s=rec.budget_s)
            if text.strip():
                prof = profiles.get(seg.speaker)
                new_text, line.estimates = estimate_line(
                    text, slots[seg.id], line_policy(ctx, seg, script), prof.syllables_per_s if prof else None,
                    shortener(lt, script, seg, slots[seg.id], ctx), code)
                if new_text != text:
                    line.shortened_from, line.text, line.machine_text = text, new_text, new_text
                    shortened.append(seg.id)
                if line.estimates and line.estimates[-1].action != "fit":
                    too_long.append(seg.id)
            seg.targets[code] = line
            translated.append(seg.id)
            rows.append({"segment": seg.id, **rec.to_dict()})
        if translated or dropped:
            ctx.project.save_script(script)
        ctx.project.write_json(L.translation_lines(code), rows)
        ctx.hooks.stage_progress(self.record_name(ctx), len(segs), len(segs))
        details = TranslateDetails(translated=translated, kept=len(segs) - len(translated), shortened=shortened,
                                   estimated_too_long=too_long, lines=L.translation_lines(code))
        if rows:
            details.glossary_hits = sum(len(r.get("glossary_hits") or []) for r in rows)
            details.names_kept = sorted({n for r in rows for n in (r.get("names_kept") or [])})
        if skipped:
            details.not_dubbed = [{"segment": s.id, "start_s": s.start_s, "end_s": s.end_s, "text": s.source_text, "reason": skipped[s.id]}
                                  for s in segs if s.id in skipped]
            log.warning("translate:%s: %d recognized line(s) not dubbed, no speech under them: %s", code, len(skipped),
                        "; ".join(f"{d['text']!r} at {d['start_s']:.2f} s ({d['reason']})" for d in details.not_dubbed[:3]))
        if too_long and not translator.shortens:
            details.note = (f"{len(too_long)} line(s) are estimated too long for their slot and the {name} "
                            "translator cannot shorten them (use --translator llm or ctranslate2, or edit the lines in script.json)")
            log.warning("translate:%s: %s", code, details.note)
        return StageOutput([L.SCRIPT, L.translation_lines(code)], details, name)
