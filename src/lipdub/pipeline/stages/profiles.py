"""Stage 7, profiles: one voice profile per speaker from their clean speech (with the voice bank if given)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from ...audio import read_audio
from ...contracts.separate import SEPARATORS
from ...layout import ProjectLayout as L
from ...voice.profiles import make_profiles
from ..context import PipelineContext
from ..runner import Stage, StageDetails, StageOutput

log = logging.getLogger(__name__)


class ProfilesDetails(StageDetails):
    speakers: dict[str, dict]  # per speaker: the figures (or error) of make_profiles
    source: str
    denoiser_available: bool


class Profiles(Stage):
    name = "profiles"
    version = 1

    def inputs(self, ctx: PipelineContext) -> list:
        cfg = ctx.config
        script = ctx.script()
        bank = None
        if cfg.voice_bank is not None:
            root = Path(cfg.voice_bank)
            bank = [str(root.resolve())] + sorted(
                (f.parent.name, hashlib.sha256(f.read_bytes()).hexdigest()[:16]) for f in root.glob("*/profile.json"))
        sep = ctx.project.manifest.stages.get("separate")
        return [ctx.project.output_hash("ingest"), sep.output_hash if sep else None,
                [(s.speaker, s.start_s, s.end_s, s.source_text) for s in script.segments],
                [(s.id, s.name) for s in script.speakers], bank]

    def run(self, ctx: PipelineContext) -> StageOutput:
        p = ctx.project
        script = ctx.script()
        denoise = None
        denoised = p.has_dialogue_stem()
        if denoised:
            audio, sr = read_audio(ctx.layout.abs(L.DIALOGUE_48K), mono=True)
        else:
            audio, sr = read_audio(ctx.layout.abs(L.MIX_48K), mono=True)
            status = SEPARATORS.status("dfn")
            if status.usable:
                denoise = SEPARATORS.create("dfn").enhance
            else:
                log.warning("profiles: DeepFilterNet unusable (%s): noisy references stay noisy", status.detail)
        for stale in p.root.glob(f"{L.VOICES_DIR}/*"):
            if stale.is_file():  # voices/<lang>/ (adapted voices) stay: they are keyed by the reference clip
                stale.unlink()
        res = make_profiles(p.root, script, audio, sr, denoised, ctx.config.voice_bank, denoise, script.source_language)
        details = ProfilesDetails(**res.details, source="dialogue stem (DeepFilterNet)" if denoised else "mix",
                                  denoiser_available=denoised or denoise is not None)
        p.save_script(script)  # a speaker may have taken a voice bank character's name
        ctx.caches.profiles = None  # the next stage reads the new profiles
        return StageOutput(res.artifacts or [L.SCRIPT], details, "praat+resemblyzer")
