"""Runs a dub: checks the inputs, then walks the ordered stages over one project directory."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..backends.transcribe.subtitles import fit_to_media, import_subtitles, log_notes
from ..config import DubConfig
from ..contracts.diarize import DIARIZERS
from ..contracts.separate import SEPARATORS
from ..contracts.synthesize import TTS_BACKENDS
from ..contracts.transcribe import TRANSCRIBERS
from ..contracts.translate import TRANSLATORS
from ..contracts.vad import VADS
from ..errors import ConfigError, InputError
from ..files import check_input_file
from ..languages import Language, parse_language
from ..layout import default_project_dir, output_paths
from ..lipsync.api import create_backend
from ..media.broadcast import check_timecode
from ..media.probe import probe
from ..models import resolve_whisper_model
from ..project import Project, RunRecord, StageRecord, input_sha256, now_iso
from ..qc.intelligibility import multilingual
from ..runtime import apply_thread_policy
from ..translation import Glossary
from .branches import Branches
from .context import PipelineContext
from .hooks import PipelineHooks
from .lines import create_translator, translator_name
from .preflight import check_outputs, check_project_dir, check_script_lines
from .runner import Stage, StageRunner
from .stages import DUBBING_ONLY, LANGUAGE_STAGES, SOURCE_STAGES
from .stages.lipsync import lipsync_options

log = logging.getLogger(__name__)

#: The last stage of each ``until`` and the stages it leaves out (``lipdub faces`` needs no separation).
UNTIL = {"faces": ("speakers", {"separate", "transcribe"}), "script": ("script", set()), "translate": ("translate", set()),
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

    Everything is checked here, before any work (diffusers' ``check_inputs``): backends exist and
    take their options, the ASR model exists, the transcript parses and fits the media (cues past
    its end dropped or cut, unspeakable lines refused: :func:`fit_to_media`), the media probes, the
    outputs and the project directory can be written and replace none of the user's files
    (:mod:`lipdub.pipeline.preflight`), a timecode is valid. Only then is the project directory made.

    Raises:
        ConfigError / InputError / BackendUnavailable / MissingWeights: a bad option or input, with a hint.
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
            Glossary.load(check_input_file(config.glossary, "glossary"))  # missing, a FIFO, malformed: fail before any work
        if config.tts != "auto":
            if TTS_BACKENDS.load(config.tts).clones and config.voice_match:
                raise ConfigError(f"--voice-match does not apply to {config.tts}: it clones each speaker's voice",
                                  "drop --voice-match (or use --no-voice-match)")
        if config.check_intelligibility:
            english_only = [t.code for t in self.targets if not multilingual(config.asr_model, t.code)]
            if english_only:
                raise ConfigError(f"--check-intelligibility: --asr-model {config.asr_model} is English-only and cannot hear "
                                  f"{', '.join(english_only)}", "use a multilingual Whisper model (--asr-model base)")
        self._check_files(config)
        self.info = probe(Path(config.input))  # the media is valid (or one clear line) before any work
        self.outputs = output_paths(config, self.info.has_video, [t.code for t in self.targets]) if self.targets else {}
        check_outputs(config, self.outputs, self.source_language.code if self.source_language else None)
        if self._transcript is not None:  # cues past the end, unspeakable lines: refused or fitted now
            log_notes(f"transcript {Path(config.transcript).name}",
                      fit_to_media(self._transcript, self.info.duration_s, f"transcript {Path(config.transcript).name}")[1])
        self._check_timecode(config)
        project_dir = Path(config.project_dir or default_project_dir(config))
        check_project_dir(config, project_dir)
        self.project = Project(project_dir)
        self.runner = StageRunner(self.project, self.hooks)
        self._branches: Branches | None = None

    def _check_files(self, config: DubConfig) -> None:
        """The transcript parses, the ASR model and the voice directories exist (before any work)."""
        self._transcript = None
        if config.transcript is not None:
            self._transcript = import_subtitles(config.transcript, config.source_language)
        elif config.transcriber == "faster-whisper":
            resolve_whisper_model(config.asr_model)  # MissingWeights now, not after four stages
        if config.voice_dir is not None and not Path(config.voice_dir).is_dir():
            raise InputError(f"--voice-dir {config.voice_dir} is not a directory", "pass the directory of your piper voices (*.onnx + *.onnx.json)")
        if config.voice_bank is not None and Path(config.voice_bank).exists() and not Path(config.voice_bank).is_dir():
            raise InputError(f"--voice-bank {config.voice_bank} is a file, not a directory", "pass a directory (it is made when missing)")

    def _check_timecode(self, config: DubConfig) -> None:
        if config.timecode is None:
            return
        if config.deliver != "broadcast" or not self.info.has_video:
            raise ConfigError(f"--timecode {config.timecode} sets the start of a broadcast master, but this dub is no broadcast master",
                              "add --deliver broadcast (for a video), or drop --timecode")
        check_timecode(config.timecode, self.info.video.fps_fraction)

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
        """Run ``stages`` in order; a video stage is queued on the video branch, which runs beside
        this (audio) branch, and a stage that needs the video branch's output waits for it."""
        branches = self._branches
        for stage in stages:
            if not stage.applies(ctx):
                continue
            if stage.video and branches is not None:
                branches.submit_video(lambda stage=stage, ctx=ctx: self.runner.run(stage, ctx))
                continue
            if stage.needs_video and branches is not None:
                branches.wait_video()
            self.runner.run(stage, ctx)

    def run(self, until: str = "render") -> DubResult:
        """Run the stages up to and including ``until`` (``faces``, ``script``, ``translate``,
        ``synthesize``, ``mix`` or ``render``), for stage-by-stage work; the default runs the whole dub.

        The video branch (faces, lip-sync) runs in a thread beside the rest (:mod:`lipdub.pipeline.branches`);
        the hooks are called from this thread, and the stage records and resume are as in a serial run.
        """
        if until not in UNTIL:
            raise ConfigError(f"unknown last stage {until!r}", f"use one of {', '.join(UNTIL)}")
        apply_thread_policy()
        self._branches = branches = Branches(self.hooks)
        self.runner.hooks = branches.hooks
        try:
            return branches.run(lambda: self._run(until))
        finally:
            self.runner.hooks = self.hooks
            self._branches = None

    def _run(self, until: str) -> DubResult:
        cfg = self.config
        dubbing = until not in ("faces", "script")
        if not self.targets and dubbing:
            raise ConfigError("no target language given", "pass --to es (or several: --to es,fr)")
        source_stages, language_stages = stages_until(until)
        src_path = Path(cfg.input).resolve()
        with self.project:
            try:
                return self._walk_all(until, source_stages, language_stages, src_path, cfg, dubbing)
            except BaseException:
                self._branches.settle()  # the video branch stops at its next hook call
                raise

    def _walk_all(self, until: str, source_stages: list[Stage], language_stages: list[Stage], src_path: Path, cfg: DubConfig,
                  dubbing: bool) -> DubResult:
        """The run's stages in order, with the project locked."""
        info, outputs = self.info, self.outputs
        run_started = now_iso()
        self.project.manifest.config = json.loads(cfg.model_dump_json())
        sha = input_sha256(self.project, src_path)
        ctx = PipelineContext(cfg, self.project, self.runner.hooks, src_path, info, sha, until, self._lipsync_backend)
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
                check_script_lines(ctx.script().segments)  # people edit script.json: bounded before synthesis
                self._walk([s for s in source_stages if s.name in DUBBING_ONLY], ctx)
                for lang in self.targets:
                    lctx = ctx.for_language(lang, src_lang, outputs[lang.code])
                    self._walk(language_stages, lctx)
                    results[lang.code] = _language_outputs(lctx, until)
        self._branches.wait_video()
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
