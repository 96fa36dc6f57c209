"""Per-line helpers shared by the translate and synthesize stages: when a line needs translating,
its isochrony limits, its voice, its TTS backend and the cache key of its speech."""

from __future__ import annotations

import hashlib
from dataclasses import asdict

from ..contracts.synthesize import TTS_BACKENDS
from ..contracts.translate import TranslationRequest
from ..languages import Language, parse_language
from ..project import hash_json
from ..script import Script, Segment
from ..timing.fit import Slot
from ..timing.isochrony import IsochronyPolicy, Shortener, segment_policy
from ..timing.slots import MAX_BORROW_BEFORE_S
from ..voice.profiles import base_voice
from .context import PipelineContext


def text_hash(text: str) -> str:
    """First 16 hex digits of the SHA-256 of the stripped text (the source text a translation was made from)."""
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:16]


def needs_translation(seg: Segment, language: str, translator: str) -> bool:
    """A line is translated when it has no target yet, its source text changed since, or another
    translator made it (unless a person edited it)."""
    t = seg.targets.get(language)
    if t is None:
        return True
    if t.source_hash != text_hash(seg.source_text):
        return True  # the source line was edited: translate again
    return t.translator != translator and not t.edited


def line_policy(ctx: PipelineContext, seg: Segment, script: Script, language: str | None = None) -> IsochronyPolicy:
    """The isochrony limits of ``seg`` under this run's config (:func:`~lipdub.timing.isochrony.segment_policy`)."""
    return segment_policy(script, seg, ctx.config.max_stretch, ctx.config.max_attempts, language)


def shortener(translator, seg: Segment, source: Language, target: Language) -> Shortener | None:
    """``(too_long_text, budget_s) -> shorter text`` for a translator that can shorten, else None."""
    if not translator.shortens:
        return None

    def shorten(text: str, budget_s: float) -> str:
        out = translator.translate([TranslationRequest(seg.source_text, budget_s, too_long=text)], source, target)[0]
        return out.strip() or text

    return shorten


def tts_for(ctx: PipelineContext, language: Language) -> str:
    """The TTS backend of ``language``: ``--tts``, or the registry's automatic choice."""
    if ctx.config.tts != "auto":
        return ctx.config.tts
    return TTS_BACKENDS.auto_choice(language, voice_dir=ctx.config.voice_dir)


def voice_for(ctx: PipelineContext, seg: Segment, script: Script, language: str | None = None, tts_name: str | None = None) -> str | None:
    """The voice of a segment: its speaker's ``voice`` in script.json, else ``--voice``, else the
    base voice of the speaker's register (:func:`lipdub.voice.profiles.base_voice`)."""
    spk = script.speaker(seg.speaker)
    explicit = (spk.voice if spk and spk.voice else None) or ctx.config.voice
    if explicit or language is None or tts_name is None:
        return explicit
    return base_voice(tts_name, parse_language(language), seg.speaker, ctx.voice_profiles())


def segment_key(ctx: PipelineContext, seg: Segment, language: str, tts_name: str, slot: Slot, script: Script) -> str:
    """Cache key of a line's speech: everything it depends on (text as first translated when the
    isochrony loop shortened it, voice, speaker profile, matching, isochrony limits, slot)."""
    cfg = ctx.config
    t = seg.targets.get(language)
    text = ""
    if t is not None:
        text = t.shortened_from if t.shortened_from is not None and t.text == t.machine_text else t.text
    voice = voice_for(ctx, seg, script, language, tts_name)
    prof = ctx.voice_profiles().get(seg.speaker)
    prof_hash = hash_json(prof.model_dump()) if prof is not None else None
    pol = line_policy(ctx, seg, script, language)
    return hash_json(text, tts_name, voice, str(cfg.voice_dir), asdict(slot), cfg.max_stretch, MAX_BORROW_BEFORE_S,
                     prof_hash, cfg.voice_match, asdict(pol), cfg.translator)[:16]
