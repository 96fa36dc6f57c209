"""Runs a dub: checks the inputs, then walks the ordered stages over one project directory."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..config import DubConfig
from ..contracts.diarize import DIARIZERS
from ..contracts.separate import SEPARATORS
from ..contracts.synthesize import TTS_BACKENDS
from ..contracts.transcribe import TRANSCRIBERS
from ..contracts.translate import TRANSLATORS
from ..contracts.vad import VADS
from ..errors import ConfigError, InputError
from ..languages import Language, parse_language
from ..layout import default_project_dir, output_paths
from ..lipsync.api import create_backend
from ..media.probe import probe
from ..project import Project, RunRecord, StageRecord, input_sha256, now_iso
from ..qc.intelligibility import multilingual
from ..translation import Glossary
from .context import PipelineContext
from .hooks import PipelineHooks
from .lines import create_translator, translator_name
from .runner import Stage, StageRunner
from .stages import DUBBING_ONLY, LANGUAGE_STAGES, SOURCE_STAGES
from .stages.lipsync import lipsync_options

log = logging.getLogger(__name__)

#: The last stage of each ``until`` and the stages it leaves out (``lipdub faces`` needs no separation).
UNTIL = {"faces": ("speakers", {"separate"}), "script": ("script", set()), "translate": ("translate", set()),
         "synthesize": ("mix", set()), "mix": ("mix", set()), "render": ("report", set())}


@dataclass
class LanguageOutputs:
    """Files delivered for one target language."""

    language: str
    media: Path
    subtitles: dict[str, Path]
    stems: dict[str, Path]


@dataclass
class DubResult:
    project_dir: Path
    source_language: str
    outputs: dict[str, LanguageOutputs]
    stages: dict[str, StageRecord]
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def stages_until(until: str) -> tuple[list[Stage], list[Stage]]:
    """The source stages and the per-language stages that a run up to ``until`` walks, in order."""
    last, left_out = UNTIL[until]
    order = [*SOURCE_STAGES, *LANGUAGE_STAGES]
    names = [s.name for s in order]
    wanted = {s.name for s in order[: names.index(last) + 1]} - left_out
    return [s for s in SOURCE_STAGES if s.name in wanted], [s for s in LANGUAGE_STAGES if s.name in wanted]


class Dubber:
    """Runs the pipeline for one :class:`DubConfig` (use :func:`dub`).

    Everything that can be checked without media is checked here, before any work (diffusers'
    ``check_inputs``): backends exist and take their options, the transcript exists.

    Raises:
        ConfigError / InputError / BackendUnavailable: a bad option, with a hint.
    """

    def __init__(self, config: DubConfig, hooks: PipelineHooks | None = None) -> None:
        self.config = config
        self.hooks = hooks or PipelineHooks()
        self.targets = [parse_language(t) for t in config.targets]
        self.source_language = parse_language(config.source_language) if config.source_language else None
        self._lipsync_backend = None
        if config.lipsync != "none":  # unknown backend, missing checkpoint, bad option: fail before any work
            self._lipsync_backend = create_backend(config.lipsync, lipsync_options(config))
        elif any(v is not None for v in lipsync_options(config).values()):
            raise ConfigError("--lipsync none takes no lip-sync option", "drop --lipsync-checkpoint, --lipsync-device and --lipsync-command")
        for name, registry in ((config.separation, SEPARATORS), (config.vad, VADS), (config.diarizer, DIARIZERS),
                               (config.transcriber, TRANSCRIBERS)):
            registry.load(name)  # unknown name or missing package: fail before any work
        if config.translator_options and config.translator == "auto":
            raise ConfigError("--translator-option needs the translator it is for", "add --translator ctranslate2 (or apertium, llm)")
        if config.translator != "auto":  # a bad option, a missing package or an unconfigured server: now
            TRANSLATORS.create_checked(config.translator, {"model": config.mt_model, **config.translator_options})
        if config.mt_model is not None and config.translator not in ("auto", "ctranslate2"):
            raise ConfigError(f"--mt-model is a ctranslate2 model, but the translator is {config.translator}",
                              "drop --mt-model, or use --translator ctranslate2 (or auto)")
        if config.glossary is not None:
            Glossary.load(config.glossary)  # missing or malformed: fail before any work
        if config.tts != "auto":
            if TTS_BACKENDS.load(config.tts).clones and config.voice_match:
                raise ConfigError(f"--voice-match does not apply to {config.tts}: it clones each speaker's voice",
                                  "drop --voice-match (or use --no-voice-match)")
        if config.check_intelligibility:
            english_only = [t.code for t in self.targets if not multilingual(config.asr_model, t.code)]
            if english_only:
                raise ConfigError(f"--check-intelligibility: --asr-model {config.asr_model} is English-only and cannot hear "
                                  f"{', '.join(english_only)}", "use a multilingual Whisper model (--asr-model base)")
        if config.transcript is not None and not Path(config.transcript).is_file():
            raise InputError(f"transcript {config.transcript} does not exist", "check the --transcript path")
        self.project = Project(config.project_dir or default_project_dir(config))
        self.runner = StageRunner(self.project, self.hooks)

    @property
    def ran(self) -> list[str]:
        return self.runner.ran

    @property
    def skipped(self) -> list[str]:
        return self.runner.skipped

    def _check_pairs(self, ctx: PipelineContext, src: Language) -> None:
        """Every target language has a translator for ``src`` that takes the given options (``llm``
        is not asked which pairs it covers)."""
        for tgt in self.targets:
            if tgt.code == src.code:
                raise ConfigError(f"the source and target language are both {src.code}", "pick another --to language")
            lctx = ctx.for_language(tgt, src, Path("."))
            name = translator_name(lctx)  # auto: ConfigError when nothing covers the pair
            translator = create_translator(lctx, name)  # its options are checked here
            if name != "llm" and not translator.supports(src, tgt):
                hint = ("point --mt-model at a model that covers it, or see lipdub doctor for the models found" if name == "ctranslate2"
                        else f"install the pair if Debian has it (apt-cache search apertium {src.code}), or use --translator llm")
                raise ConfigError(f"no {name} translator for {src.code} -> {tgt.code}", hint)

    def _walk(self, stages: list[Stage], ctx: PipelineContext) -> None:
        for stage in stages:
            if stage.applies(ctx):
                self.runner.run(stage, ctx)

    def run(self, until: str = "render") -> DubResult:
        """Run the stages up to and including ``until`` (``faces``, ``script``, ``translate``,
        ``synthesize``, ``mix`` or ``render``), for stage-by-stage work; the default runs the whole dub."""
        if until not in UNTIL:
            raise ConfigError(f"unknown last stage {until!r}", f"use one of {', '.join(UNTIL)}")
        cfg = self.config
        dubbing = until not in ("faces", "script")
        if not self.targets and dubbing:
            raise ConfigError("no target language given", "pass --to es (or several: --to es,fr)")
        source_stages, language_stages = stages_until(until)
        src_path = Path(cfg.input).resolve()
        with self.project:
            run_started = now_iso()
            info = probe(src_path)  # validates before anything else
            outputs = output_paths(cfg, info.has_video, [t.code for t in self.targets]) if self.targets else {}
            self.project.manifest.config = json.loads(cfg.model_dump_json())
            sha = input_sha256(self.project, src_path)
            ctx = PipelineContext(cfg, self.project, self.hooks, src_path, info, sha, until, self._lipsync_backend)
            if self.source_language is not None and dubbing:
                self._check_pairs(ctx, self.source_language)
            self.project.save_manifest()
            self._walk([s for s in source_stages if s.name not in DUBBING_ONLY], ctx)
            results: dict[str, LanguageOutputs] = {}
            src_code = ""
            if until != "faces":
                src_lang = parse_language(ctx.script().source_language)
                src_code = src_lang.code
                if dubbing:
                    self._check_pairs(ctx, src_lang)
                    self._walk([s for s in source_stages if s.name in DUBBING_ONLY], ctx)
                    for lang in self.targets:
                        lctx = ctx.for_language(lang, src_lang, outputs[lang.code])
                        self._walk(language_stages, lctx)
                        results[lang.code] = _language_outputs(lctx, until)
            self.project.manifest.runs.append(RunRecord(started_at=run_started, finished_at=now_iso(), ran=list(self.ran), skipped=list(self.skipped)))
            self.project.save_manifest()
        return DubResult(self.project.root, src_code, results, dict(self.project.manifest.stages), self.ran, self.skipped)


def _language_outputs(ctx: PipelineContext, until: str) -> LanguageOutputs:
    code = ctx.language.code
    if until == "translate":
        return LanguageOutputs(code, ctx.output, {}, {})
    if until in ("synthesize", "mix"):
        return LanguageOutputs(code, ctx.output, {}, {k: ctx.layout.abs(ctx.layout.stem(code, k)) for k in ("dialogue", "me", "mix")})
    out = ctx.deliverables
    return LanguageOutputs(code, ctx.output, out.subtitles, out.stems)


def dub(config: DubConfig, hooks: PipelineHooks | None = None) -> DubResult:
    """Dub ``config.input`` into each of ``config.targets``; see :class:`DubConfig`.

    Raises:
        LipdubError (InputError, ConfigError, BackendUnavailable, MissingWeights, StageFailed):
            with a message and a hint; everything computed so far stays in the project directory.
    """
    return Dubber(config, hooks).run()
