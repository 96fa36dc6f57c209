"""Stage 6, translate (per language): target text per segment, checked against its slot before synthesis."""

from __future__ import annotations

import logging

from ...contracts.translate import TRANSLATORS, TranslationRequest
from ...layout import ProjectLayout as L
from ...script import TargetLine
from ...timing.isochrony import estimate_line
from ...timing.slots import compute_slots
from ..context import PipelineContext
from ..lines import line_policy, needs_translation, shortener, text_hash
from ..runner import Stage, StageDetails, StageOutput

log = logging.getLogger(__name__)


class TranslateDetails(StageDetails):
    translated: list[int]
    kept: int
    shortened: list[int]
    estimated_too_long: list[int]
    note: str | None = None


class Translate(Stage):
    """Translate the lines that need it (no target yet, or the source text changed; edits are kept),
    then check each new line's estimated spoken duration (syllables / speaker rate) against its slot
    and ask a translator that can shorten for a shorter version (:func:`~lipdub.timing.isochrony.estimate_line`)."""

    name = "translate"
    version = 2
    per_language = True

    def inputs(self, ctx: PipelineContext) -> list:
        seg_sources = [(s.id, s.source_text, s.start_s, s.end_s) for s in ctx.script().segments]
        return [ctx.config.translator, ctx.source_language.code, seg_sources]

    def force(self, ctx: PipelineContext) -> bool:
        # Target texts are not inputs (the stage writes them, people edit them): a line is translated
        # when it has no target yet or its source text changed since it was translated.
        return any(needs_translation(s, ctx.language.code, ctx.config.translator) for s in ctx.script().segments)

    def total(self, ctx: PipelineContext) -> int | None:
        return len(ctx.script().segments)

    def media_s(self, ctx: PipelineContext) -> float | None:
        return None

    def run(self, ctx: PipelineContext) -> StageOutput:
        lang, src_lang, code = ctx.language, ctx.source_language, ctx.language.code
        name = ctx.config.translator
        script = ctx.script()
        slots = compute_slots(script.segments, ctx.info.duration_s)
        translator = TRANSLATORS.create(name)
        todo = [s for s in script.segments if needs_translation(s, code, name)]
        too_long: list[int] = []
        shortened: list[int] = []
        if todo:
            requests = [TranslationRequest(s.source_text, round(slots[s.id].end_s - slots[s.id].start_s + slots[s.id].free_after_s, 3)) for s in todo]
            texts = translator.translate(requests, src_lang, lang)
            profiles = ctx.voice_profiles()
            for seg, req, text in zip(todo, requests, texts):
                line = TargetLine(text=text, machine_text=text, translator=name,
                                  source_hash=text_hash(seg.source_text), duration_budget_s=req.duration_budget_s)
                if text.strip():
                    prof = profiles.get(seg.speaker)
                    new_text, line.estimates = estimate_line(
                        text, slots[seg.id], line_policy(ctx, seg, script), prof.syllables_per_s if prof else None,
                        shortener(translator, seg, src_lang, lang), code)
                    if new_text != text:
                        line.shortened_from, line.text, line.machine_text = text, new_text, new_text
                        shortened.append(seg.id)
                    if line.estimates and line.estimates[-1].action != "fit":
                        too_long.append(seg.id)
                seg.targets[code] = line
            ctx.project.save_script(script)
        ctx.hooks.stage_progress(self.record_name(ctx), len(script.segments), len(script.segments))
        details = TranslateDetails(translated=[s.id for s in todo], kept=len(script.segments) - len(todo),
                                   shortened=shortened, estimated_too_long=too_long)
        if too_long and not translator.shortens:
            details.note = (f"{len(too_long)} line(s) are estimated too long for their slot and the {name} "
                            "translator cannot shorten them (use --translator llm, or edit the lines in script.json)")
            log.warning("translate:%s: %s", code, details.note)
        return StageOutput([L.SCRIPT], details, name)
