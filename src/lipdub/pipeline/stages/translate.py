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


class TranslateDetails(StageDetails):
    translated: list[int]
    kept: int
    shortened: list[int]
    estimated_too_long: list[int]
    glossary_hits: int | None = None
    names_kept: list[str] | None = None
    lines: str | None = None
    note: str | None = None


class Translate(Stage):
    """Translate the lines that need it (no target yet, or the source text changed; edits are kept),
    then check each new line's estimated spoken duration (syllables / speaker rate) against its slot
    and ask a translator that can shorten for a shorter version (:func:`~lipdub.timing.isochrony.estimate_line`)."""

    name = "translate"
    version = 2
    per_language = True

    def inputs(self, ctx: PipelineContext) -> list:
        cfg = ctx.config
        seg_sources = [(s.id, s.source_text, s.start_s, s.end_s) for s in ctx.script().segments]
        # the model and the glossary key the cache only when given (projects made before they existed keep their records)
        extra = [str(cfg.mt_model)] if cfg.mt_model else []
        extra += [sorted(cfg.translator_options.items())] if cfg.translator_options else []
        extra += [sha256_file(cfg.glossary)] if cfg.glossary else []
        return [translator_name(ctx), ctx.source_language.code, seg_sources, *extra]

    def force(self, ctx: PipelineContext) -> bool:
        # Target texts are not inputs (the stage writes them, people edit them): a line is translated
        # when it has no target yet or its source text changed since it was translated.
        name = translator_name(ctx)
        return any(needs_translation(s, ctx.language.code, name) for s in ctx.script().segments)

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
        todo = {i for i, s in enumerate(segs) if needs_translation(s, code, name)}
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
        if translated:
            ctx.project.save_script(script)
        ctx.project.write_json(L.translation_lines(code), rows)
        ctx.hooks.stage_progress(self.record_name(ctx), len(segs), len(segs))
        details = TranslateDetails(translated=translated, kept=len(segs) - len(translated), shortened=shortened,
                                   estimated_too_long=too_long, lines=L.translation_lines(code))
        if rows:
            details.glossary_hits = sum(len(r.get("glossary_hits") or []) for r in rows)
            details.names_kept = sorted({n for r in rows for n in (r.get("names_kept") or [])})
        if too_long and not translator.shortens:
            details.note = (f"{len(too_long)} line(s) are estimated too long for their slot and the {name} "
                            "translator cannot shorten them (use --translator llm or ctranslate2, or edit the lines in script.json)")
            log.warning("translate:%s: %s", code, details.note)
        return StageOutput([L.SCRIPT, L.translation_lines(code)], details, name)
