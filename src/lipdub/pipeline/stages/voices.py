"""Stage 8a, voices (per language): for a TTS that adapts voices (``TtsBackend.adapts_voices``: kokoro),
one voice per speaker, made once per speaker and language before the lines are spoken.

Each speaker without a voice chosen by a person (script.json ``voice``, ``--voice``) gets
``tts.adapt_voices(...)``: kokoro starts from the stock pack nearest the speaker's profile or the
blend of its measured blend bank nearest the reference clip (no synthesis), then searches blends
toward the reference clip for ``--voice-search`` syntheses (0: none), keeping every speaker's voice
distinct from the others'. The voices go to ``voices/<lang>/`` (and the
voice bank for named characters); ``voices/<lang>/voices.json`` lists them for the synthesize stage.
An unchanged speaker is not searched again (the stage is skipped, or the backend reuses its file).

The search's candidates are not checked by Whisper here: every line spoken with the voice is heard by
the synthesize stage, and a misheard line is re-spoken with the speaker's fallback stock voice
(:mod:`lipdub.pipeline.hearing`); a Whisper check of 4 candidates per speaker would cost about 6 s of
CPU per speaker, far over issue 14's RTF budget (README "Voices").
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path

from ...contracts.synthesize import TTS_BACKENDS
from ...layout import ProjectLayout as L
from ..context import PipelineContext
from ..lines import explicit_voice, tts_for
from ..runner import Stage, StageDetails, StageOutput

log = logging.getLogger(__name__)


class VoicesDetails(StageDetails):
    tts: str
    evaluations: int
    speakers: dict[str, dict]  # per speaker: the backend's record (start voice, similarities, check WER, source)
    explicit: dict[str, str]  # speakers whose voice a person chose, and that voice


def _file_sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else None


class Voices(Stage):
    name = "voices"
    version = 2  # 2: kokoro starts from its blend bank
    per_language = True

    def applies(self, ctx: PipelineContext) -> bool:
        return TTS_BACKENDS.load(tts_for(ctx, ctx.language)).adapts_voices and bool(ctx.voice_profiles())

    def _wanted(self, ctx: PipelineContext) -> dict:
        """Profiles of the speakers whose voice no person chose."""
        script = ctx.script()
        return {spk: prof for spk, prof in ctx.voice_profiles().items() if explicit_voice(ctx, script, spk) is None}

    def inputs(self, ctx: PipelineContext) -> list:
        cfg, code = ctx.config, ctx.language.code
        vdir = ctx.layout.abs(L.VOICES_DIR)
        speakers = [(spk, prof.model_dump(), _file_sha(vdir / prof.reference_path)) for spk, prof in sorted(self._wanted(ctx).items())]
        bank = None
        if cfg.voice_bank is not None:
            root = Path(cfg.voice_bank)
            bank = [str(root.resolve())] + sorted((f.parent.name, _file_sha(f)) for f in root.glob(f"*/*{code}.npy"))
        return [tts_for(ctx, ctx.language), code, speakers, cfg.voice_search, bank]

    def run(self, ctx: PipelineContext) -> StageOutput:
        cfg, code, p = ctx.config, ctx.language.code, ctx.project
        tts_name = tts_for(ctx, ctx.language)
        out_dir = ctx.layout.abs(L.adapted_voices_dir(code))
        out_dir.mkdir(parents=True, exist_ok=True)
        tts = TTS_BACKENDS.create(tts_name, voice_dir=out_dir)
        wanted = self._wanted(ctx)
        voices = tts.adapt_voices(wanted, out_dir, ctx.language, reference_dir=ctx.layout.abs(L.VOICES_DIR),
                                  evaluations=cfg.voice_search, whisper=None, bank_dir=cfg.voice_bank) if wanted else {}
        p.write_json(L.adapted_voices(code), {"tts": tts_name, "voices": {spk: asdict(v) for spk, v in voices.items()}})
        ctx.caches.adapted_voices.pop(code, None)  # the synthesize stage reads the new ones
        keep = {L.adapted_voices(code)}
        for v in voices.values():
            keep |= {f"{L.adapted_voices_dir(code)}/{v.voice_id}", f"{L.adapted_voices_dir(code)}/{Path(v.voice_id).with_suffix('.json')}"}
        for f in out_dir.iterdir():  # voices of speakers no longer in the script
            if f.is_file() and f"{L.adapted_voices_dir(code)}/{f.name}" not in keep:
                f.unlink()
        script = ctx.script()
        explicit = {s.id: explicit_voice(ctx, script, s.id) for s in script.speakers if explicit_voice(ctx, script, s.id)}
        details = VoicesDetails(tts=tts_name, evaluations=cfg.voice_search,
                                speakers={spk: v.details for spk, v in voices.items()}, explicit=explicit)
        log.info("voices:%s %s", code, json.dumps({spk: (v.voice_id, v.details.get("source")) for spk, v in voices.items()}))
        return StageOutput(sorted(k for k in keep if ctx.layout.abs(k).exists()), details, tts_name)
