"""Per-line helpers shared by the translate and synthesize stages: when a line needs translating,
its isochrony limits, its voice, its TTS backend and the cache key of its speech."""

from __future__ import annotations

import hashlib
from dataclasses import asdict

from ..contracts.synthesize import TTS_BACKENDS
from ..contracts.translate import TRANSLATORS
from ..errors import ConfigError
from ..languages import Language, parse_language
from ..project import hash_json
from ..script import Script, Segment
from ..timing.fit import Slot
from ..timing.isochrony import IsochronyPolicy, Shortener, segment_policy
from ..timing.slots import MAX_BORROW_BEFORE_S
from ..translation import Glossary, LineTranslator, SourceLine, detect_names, fixed_terms
from ..translation.terms import contains
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


def translator_name(ctx: PipelineContext) -> str:
    """The translator of this language: ``--translator``, ctranslate2 when ``auto`` is given a
    ``--mt-model``, else the registry's automatic choice for the pair (ctranslate2, then apertium).

    Raises:
        ConfigError: ``auto`` and no translator covers the pair.
    """
    cfg = ctx.config
    if cfg.translator != "auto":
        return cfg.translator
    if cfg.mt_model is not None:
        return "ctranslate2"
    chosen = ctx.caches.translators
    try:
        if ctx.language.code not in chosen:
            chosen[ctx.language.code] = TRANSLATORS.auto_choice(ctx.source_language, ctx.language)
        return chosen[ctx.language.code]
    except ConfigError:
        pair = f"{ctx.source_language.code} -> {ctx.language.code}"
        raise ConfigError(f"no apertium translator for {pair} and no ctranslate2 model that covers it",
                          "install the apertium pair if Debian has it (apt-cache search apertium), point --mt-model at an "
                          "NLLB / OPUS-MT CTranslate2 model, or use --translator llm") from None


def create_translator(ctx: PipelineContext, name: str):
    """The translator ``name`` with the user's options (``--mt-model``, ``--translator-option``; an
    option it does not take is a ConfigError)."""
    return TRANSLATORS.create_checked(name, {"model": ctx.config.mt_model, **ctx.config.translator_options})


def line_translator(ctx: PipelineContext, translator, script: Script) -> LineTranslator:
    """The whole-script translator: glossary terms and the names of the transcript kept, sentences
    split across lines translated as one (:class:`lipdub.translation.LineTranslator`)."""
    glossary, names = _glossary_and_names(ctx, script)
    return LineTranslator(translator, ctx.source_language, ctx.language, glossary=glossary, names=names)


def _glossary_and_names(ctx: PipelineContext, script: Script) -> tuple[Glossary | None, list[str]]:
    """The run's glossary (None: none) and the names of the transcript (:func:`~lipdub.translation.detect_names`)."""
    glossary = Glossary.load(ctx.config.glossary) if ctx.config.glossary else None
    return glossary, detect_names([s.source_text for s in script.segments], ctx.source_language)


def source_line(ctx: PipelineContext, seg: Segment, slot: Slot) -> SourceLine:
    """A script segment as a line to translate, with its duration budget (slot + free time after)."""
    prof = ctx.voice_profiles().get(seg.speaker)
    budget = round(slot.end_s - slot.start_s + slot.free_after_s, 3)
    return SourceLine(seg.source_text, budget, seg.speaker, seg.start_s, seg.end_s, prof.syllables_per_s if prof else None)


def shortener(lt: LineTranslator, script: Script, seg: Segment, slot: Slot, ctx: PipelineContext) -> Shortener | None:
    """``(too_long_text, budget_s) -> shorter text`` for a translator that can shorten, else None."""
    if not lt.translator.shortens:
        return None
    index = script.segments.index(seg)
    around = [s.source_text for s in script.segments]

    def shorten(text: str, budget_s: float) -> str:
        rec = lt.shorten(source_line(ctx, seg, slot), text, budget_s, index=index,
                         context_before=around[index - 1] if index > 0 else None,
                         context_after=around[index + 1] if index + 1 < len(around) else None)
        return rec.text.strip() or text

    return shorten


def tts_for(ctx: PipelineContext, language: Language) -> str:
    """The TTS backend of ``language``: ``--tts``, or the registry's automatic choice."""
    if ctx.config.tts != "auto":
        return ctx.config.tts
    return TTS_BACKENDS.auto_choice(language, voice_dir=ctx.config.voice_dir)


def explicit_voice(ctx: PipelineContext, script: Script, speaker: str) -> str | None:
    """The voice a person chose for ``speaker``: its ``voice`` in script.json, else ``--voice`` (None: none)."""
    spk = script.speaker(speaker)
    return (spk.voice if spk and spk.voice else None) or ctx.config.voice


def voice_for(ctx: PipelineContext, seg: Segment, script: Script, language: str | None = None, tts_name: str | None = None) -> str | None:
    """The voice of a segment: its speaker's ``voice`` in script.json, else ``--voice``, else the voice
    the voices stage adapted for the speaker (a TTS that adapts voices), else the base voice of the
    speaker's register (:func:`lipdub.voice.profiles.base_voice`)."""
    explicit = explicit_voice(ctx, script, seg.speaker)
    if explicit or language is None or tts_name is None:
        return explicit
    adapted = ctx.adapted_voices(tts_name).get(seg.speaker) if ctx.language is not None and ctx.language.code == language else None
    if adapted is not None:
        return adapted.voice_id
    return base_voice(tts_name, parse_language(language), seg.speaker, ctx.voice_profiles())


def voice_match_on(ctx: PipelineContext, tts_name: str) -> bool:
    """Whether Praat voice matching applies to the lines of TTS ``tts_name``: the config's
    ``voice_match``, else the backend's declared ``voice_match_default`` (never for a cloning backend).

    Raises:
        ConfigError: ``--voice-match`` given for a backend that clones voices (it would be ignored).
    """
    cls = TTS_BACKENDS.load(tts_name)
    if cls.clones:
        if ctx.config.voice_match:
            raise ConfigError(f"--voice-match does not apply to {tts_name}: it clones each speaker's voice",
                              "drop --voice-match (or use --no-voice-match)")
        return False
    return cls.voice_match_default if ctx.config.voice_match is None else bool(ctx.config.voice_match)


def kept_names(ctx: PipelineContext, script: Script) -> list[str]:
    """The words the translation keeps as written (:class:`~lipdub.translation.LineTranslator`, by the
    same rule, :func:`~lipdub.translation.fixed_terms`): the glossary's ``keep`` entries for this
    language, then the names of the transcript that no glossary entry covers; in that order, each once."""
    glossary, names = _glossary_and_names(ctx, script)
    return [t.source for t, kind in fixed_terms(ctx.language, glossary, names).items() if kind != "glossary"]


def names_reader(ctx: PipelineContext, tts_name: str) -> tuple[Language | None, str]:
    """``(language, note)``: the source language when TTS ``tts_name`` can pronounce kept names in it
    inside a target line (its ``reads_names`` capability), else None; ``note`` says which, for the
    stage record."""
    src, cls = ctx.source_language, TTS_BACKENDS.load(tts_name)
    if src is None or ctx.language is None:
        return None, "kept names read as the dub's words (no source language)"
    if src.code == ctx.language.code:
        return None, "no names to read otherwise: the source and the dub are in one language"
    if cls.reads_names(src, ctx.language):
        return src, f"kept names read with {src.code} pronunciation"
    return None, f"kept names read with {ctx.language.code} pronunciation ({tts_name} cannot read {src.code} inside a line)"


def names_in(text: str, names: list[str]) -> list[str]:
    """The ``names`` that occur in ``text`` as whole words (:func:`lipdub.translation.terms.contains`)."""
    return [n for n in names if contains(text, n)]


#: Bumped when what a line's files hold changes (2: natural speed, the adapted voice, the hearing loop;
#: 3: Kokoro lines sped up by the time-stretch instead of Kokoro's speed, the hearing's word owner;
#: 4: espeak-ng lines from one pristine library state each, :mod:`lipdub.backends.tts.espeak_zygote`;
#: 5: misheard lines re-synthesized by diagnosis, :func:`lipdub.pipeline.hearing.diagnose`).
LINE_FORMAT = 5


def segment_key(ctx: PipelineContext, seg: Segment, language: str, tts_name: str, slot: Slot, script: Script,
                hearing: tuple | None = None, names: tuple[list[str], Language] | None = None) -> str:
    """Cache key of a line's speech: everything it depends on (text as first translated when the
    isochrony loop shortened it, voice and the adapted voice's content, speaker profile, matching,
    isochrony limits, slot, the intelligibility check: ``hearing`` = its model and threshold, None: off;
    ``names``: the kept names and the language the TTS reads them in, None: read as the target's words)."""
    cfg = ctx.config
    t = seg.targets.get(language)
    text = ""
    if t is not None:
        text = t.shortened_from if t.shortened_from is not None and t.text == t.machine_text else t.text
    voice = voice_for(ctx, seg, script, language, tts_name)
    prof = ctx.voice_profiles().get(seg.speaker)
    prof_hash = hash_json(prof.model_dump()) if prof is not None else None
    pol = line_policy(ctx, seg, script, language)
    adapted = None
    if explicit_voice(ctx, script, seg.speaker) is None and ctx.language is not None and ctx.language.code == language:
        a = ctx.adapted_voices(tts_name).get(seg.speaker)
        adapted = None if a is None else (a.key, a.natural_speed, a.fallback_voice)
    return hash_json(LINE_FORMAT, text, tts_name, voice, adapted, str(cfg.voice_dir), asdict(slot), cfg.max_stretch,
                     MAX_BORROW_BEFORE_S, prof_hash, voice_match_on(ctx, tts_name), asdict(pol), translator_name(ctx),
                     list(hearing) if hearing else None,
                     _names_part(text, names))[:16]


def _names_part(text: str, names: tuple[list[str], Language] | None) -> list | None:
    """The names part of a line's key: None for a line with no kept name (its speech does not change)."""
    found = names_in(text, names[0]) if names is not None else []
    return [found, names[1].code] if found else None
