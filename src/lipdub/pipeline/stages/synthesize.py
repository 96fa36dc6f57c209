"""Stage 8, synthesize (per language): speak, voice-match and fit every line whose key changed,
through the closed isochrony loop (:func:`lipdub.timing.isochrony.fit_line`): faster TTS,
re-translation, time-stretch. One fitted WAV, fit JSON and phoneme JSON per line in ``tts/<lang>/``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from ...audio import write_audio
from ...contracts.synthesize import TTS_BACKENDS, Speech
from ...layout import ProjectLayout as L
from ...media.probe import MIX_RATE_HZ
from ...qc.redo import mark_failed_segments
from ...script import FitReport, Script, Segment, TargetLine
from ...timing.isochrony import fit_line
from ...timing.slots import compute_slots
from ...voice.match import NotMatchable, match_voice
from ..context import PipelineContext
from ..lines import create_translator, line_policy, line_translator, segment_key, shortener, translator_name, tts_for, voice_for
from ..runner import Stage, StageDetails, StageOutput


class SynthesizeDetails(StageDetails):
    synthesized: list[int]
    reused: list[int]
    retranslated: list[int]
    max_stretch_ratio: float
    max_speedup: float
    over_limit_segments: list[int]
    overrun_segments: list[int]
    voice_matched: bool


class _LineSynth:
    """The TTS, translator and voice clones of one run of the stage, created when first needed."""

    def __init__(self, ctx: PipelineContext, tts_name: str) -> None:
        self.ctx, self.tts_name = ctx, tts_name
        self._tts = self._translator = None
        self.clones: dict[str, str] = {}

    @property
    def tts(self):
        if self._tts is None:
            opts: dict[str, Any] = {}
            if self.tts_name == "piper" and self.ctx.config.voice_dir is not None:
                opts["voice_dir"] = self.ctx.config.voice_dir
            self._tts = TTS_BACKENDS.create(self.tts_name, **opts)
        return self._tts

    def line_translator(self, script: Script):
        """The script's :class:`~lipdub.translation.LineTranslator` (for shorter re-translations)."""
        if self._translator is None:
            self._translator = line_translator(self.ctx, create_translator(self.ctx, translator_name(self.ctx)), script)
        return self._translator

    def fit(self, seg: Segment, script: Script, target: TargetLine, slot):
        """Speak ``target`` for ``seg`` and fit it into ``slot``; returns ``(LineFit, voice, policy)``."""
        ctx, tts, code = self.ctx, self.tts, self.ctx.language.code
        voice = voice_for(ctx, seg, script, code, self.tts_name)
        prof = ctx.voice_profiles().get(seg.speaker)
        if tts.clones and voice is None and prof is not None:
            if seg.speaker not in self.clones:
                self.clones[seg.speaker] = tts.clone(prof.name, ctx.layout.abs(L.VOICES_DIR) / prof.reference_path)
            voice = self.clones[seg.speaker]
        matcher = prof if (ctx.config.voice_match and prof is not None and not tts.clones) else None

        def speak(text: str, rate: float, voice=voice, matcher=matcher):
            speech: Speech = tts.synthesize(text, ctx.language, voice=voice, rate=rate)
            if matcher is None:
                return speech, None
            try:
                samples, settings = match_voice(speech.samples, speech.sample_rate_hz, matcher)
            except NotMatchable as exc:  # a one-word line: kept as synthesized, and said so
                return speech, {"skipped": str(exc)}
            return Speech(samples, speech.sample_rate_hz, speech.phonemes, speech.voice), settings.as_dict()

        policy = line_policy(ctx, seg, script, code)
        shorten = shortener(self.line_translator(script), script, seg, slot, ctx)
        line = fit_line(target.text, slot, policy, speak, shorten, MIX_RATE_HZ, max_backend_rate=float(tts.max_rate))
        return line, voice, policy


class Synthesize(Stage):
    name = "synthesize"
    version = 2
    per_language = True

    def prepare(self, ctx: PipelineContext) -> None:
        if ctx.config.redo_failed:  # lines the last report did not pass get a re-fit request (qc/redo.py)
            script = ctx.script()
            mark_failed_segments(ctx.project, script, ctx.language.code, lambda seg: line_policy(ctx, seg, script, ctx.language.code))

    def _keys(self, ctx: PipelineContext) -> dict[int, str]:
        script = ctx.script()
        slots = compute_slots(script.segments, ctx.info.duration_s)
        tts_name = tts_for(ctx, ctx.language)
        return {s.id: segment_key(ctx, s, ctx.language.code, tts_name, slots[s.id], script) for s in script.segments}

    def inputs(self, ctx: PipelineContext) -> list:
        return [tts_for(ctx, ctx.language), self._keys(ctx)]

    def total(self, ctx: PipelineContext) -> int | None:
        return len(ctx.script().segments)

    def run(self, ctx: PipelineContext) -> StageOutput:
        code, p = ctx.language.code, ctx.project
        tts_name, keys = tts_for(ctx, ctx.language), self._keys(ctx)
        script = ctx.script()
        slots = compute_slots(script.segments, ctx.info.duration_s)
        synth = _LineSynth(ctx, tts_name)
        tts_dir = p.path(f"{L.tts_dir(code)}/.keep").parent
        wanted: set[str] = set()
        made, reused, retranslated = [], [], []
        for i, seg in enumerate(script.segments):
            stem = L.tts_stem(seg.id, keys[seg.id])
            wav, meta = tts_dir / f"{stem}.wav", tts_dir / f"{stem}.json"
            wanted |= {wav.name, meta.name}
            target = seg.targets.get(code)
            if target is None or not target.text.strip():
                continue
            if wav.exists() and meta.exists():
                fit = _reuse_fit(meta, target)
                reused.append(seg.id)
            else:
                fit, shortened = _new_fit(ctx, synth, seg, script, target, slots[seg.id], wav, meta)
                if shortened:
                    retranslated.append(seg.id)
                made.append(seg.id)
            phonemes = Path(L.phonemes_of(fit.audio_path)).name if fit.audio_path else None
            if phonemes and (tts_dir / phonemes).exists():
                wanted.add(phonemes)
            target.fit = fit
            ctx.hooks.stage_progress(self.record_name(ctx), i + 1, len(script.segments))
        for f in tts_dir.iterdir():  # lines whose text or slot changed leave stale files
            if f.is_file() and f.name not in wanted and f.name != ".keep":
                f.unlink()
        p.save_script(script)
        arts = sorted(f"{L.tts_dir(code)}/{n}" for n in wanted if (tts_dir / n).exists())
        details = _details(script, code, made, reused, retranslated, ctx.config.voice_match and bool(ctx.voice_profiles()))
        return StageOutput(arts or [L.SCRIPT], details, tts_name)


def _reuse_fit(meta: Path, target: TargetLine) -> FitReport:
    """The fit record of a line whose speech is already made."""
    fit = FitReport.model_validate_json(meta.read_text())
    if fit.history and fit.history[-1].text != target.text and target.text == target.machine_text:
        # a run killed after this line's fit was written but before script.json: take the loop's shorter text
        target.shortened_from = target.shortened_from or target.text
        target.text = target.machine_text = fit.history[-1].text
    return fit


def _new_fit(ctx: PipelineContext, synth: _LineSynth, seg: Segment, script: Script, target: TargetLine, slot,
             wav: Path, meta: Path) -> tuple[FitReport, bool]:
    """Synthesize and fit one line, write its WAV, fit JSON (atomically, last) and phoneme timings;
    returns its fit record and whether the isochrony loop re-translated it shorter."""
    p = ctx.project
    line, voice, policy = synth.fit(seg, script, target, slot)
    fitted = line.fitted
    write_audio(wav, fitted.samples, MIX_RATE_HZ)
    fit = fitted.report(synth.tts_name, slot, attempts=len(line.history), audio_path=p.rel(wav))
    fit.tts_rate, fit.max_stretch, fit.on_screen = round(line.tts_rate, 4), policy.max_speedup, policy.on_screen
    fit.voice_match, fit.history = line.match, line.history
    if fit.voice is None:
        fit.voice = voice
    shortened = line.text != target.text
    if shortened:
        target.shortened_from = target.shortened_from or target.text
        target.text = target.machine_text = line.text
    if fitted.phonemes:
        p.write_json(L.phonemes_of(p.rel(wav)), [asdict(ph) for ph in fitted.phonemes])
    p.write_json(p.rel(meta), fit)  # atomic: a killed run never leaves half a record
    return fit, shortened


def _details(script: Script, code: str, made: list[int], reused: list[int], retranslated: list[int], voice_matched: bool) -> SynthesizeDetails:
    fits = {s.id: s.targets[code].fit for s in script.segments if code in s.targets and s.targets[code].fit}
    speedups = [f.tts_rate * f.stretch_ratio for f in fits.values()]
    return SynthesizeDetails(
        synthesized=made, reused=reused, retranslated=retranslated,
        max_stretch_ratio=max((f.stretch_ratio for f in fits.values()), default=1.0),
        max_speedup=round(max(speedups, default=1.0), 4),
        over_limit_segments=[i for i, f in fits.items() if f.max_stretch is not None and f.tts_rate * f.stretch_ratio > f.max_stretch + 1e-3],
        overrun_segments=[i for i, f in fits.items() if f.overrun_s > 0.01],
        voice_matched=voice_matched,
    )
