"""Stage 8, synthesize (per language): speak, voice-match and fit every line whose key changed,
through the closed isochrony loop (:func:`lipdub.timing.isochrony.fit_line`): faster TTS,
re-translation, time-stretch; then hear every new line back and re-synthesize the misheard ones
(:mod:`lipdub.pipeline.hearing`), each line heard where it is placed, with its neighbours. One fitted WAV, fit JSON and phoneme JSON per line in ``tts/<lang>/``.

Lines are made in batches of :data:`BATCH_LINES` (fitted, heard together, re-synthesized, then
written), so a killed run loses at most one batch. When every line is final, a line that still
overruns its slot delays the lines after it (:func:`lipdub.timing.placement.place_fits`: no two lines
at once unless the source has two speakers at once); lines are heard placed so, and the placement
is written to ``script.json`` (what the mix, the lip-sync, the subtitles and the report use) and to
``tts/<lang>/placement.json`` (so that the stages after this one key on it).
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ...audio import write_audio
from ...contracts.synthesize import TTS_BACKENDS, Speech
from ...layout import ProjectLayout as L
from ...media.probe import MIX_RATE_HZ
from ...qc.intelligibility import hear_in_context
from ...qc.redo import mark_failed_segments
from ...qc.thresholds import Thresholds
from ...script import FitReport, LineHearing, Script, Segment, TargetLine
from ...timing.fit import OVERRUN_TOLERANCE_S
from ...timing.isochrony import fit_line
from ...timing.placement import LineSpan, place_fits, ripple_starts, squeezed
from ...timing.slots import compute_slots
from ...voice.match import NotMatchable, match_voice
from ..context import PipelineContext
from ..hearing import (HEARD_IN, Candidate, Hearing, best_candidate, diagnose, heard_loudness_lufs, hearing_for, join_speech, lower_rate,
                       next_remedy, slowest_rate, split_phrases, word_pause_text)
from ..lines import (create_translator, explicit_voice, kept_names, line_policy, line_translator, names_in, names_reader,
                     segment_key, shortener, translator_name, tts_for, voice_for, voice_match_on)
from ..runner import Stage, StageDetails, StageOutput

#: Lines fitted, heard (one Whisper window) and written together.
BATCH_LINES = 8
#: Where each line is placed (after the ripple), in ``tts/<lang>/``: an artifact, so later stages key on it.
PLACEMENT_JSON = "placement.json"


class SynthesizeDetails(StageDetails):
    synthesized: list[int]
    reused: list[int]
    retranslated: list[int]
    max_stretch_ratio: float
    max_speedup: float
    over_limit_segments: list[int]
    overrun_segments: list[int]
    voice_matched: bool
    adapted_voices: dict[str, str]  # speaker -> the voice the voices stage made for them
    hearing: str  # the ASR model and threshold, or why the lines were not heard
    resynthesized_misheard: list[int]  # lines re-synthesized because ASR misheard them
    flagged_misheard: list[int]  # lines still misheard after every attempt (kept, and flagged)
    names: str = ""  # how the kept (untranslated) names are pronounced: source or target language, and why
    delayed_segments: list[int] = []  # lines placed later than their own fit: the line before them overran


class _LineSynth:
    """The TTS, translator, voice clones and hearing of one run of the stage, created when first needed."""

    def __init__(self, ctx: PipelineContext, tts_name: str, names: tuple[list[str], Any] | None = None) -> None:
        self.ctx, self.tts_name = ctx, tts_name
        self._tts = self._translator = None
        self.clones: dict[str, str] = {}
        self.match = voice_match_on(ctx, tts_name)
        self.names = names  # (kept names, the language the TTS reads them in), None: read as target words

    def name_options(self, text: str) -> dict[str, Any]:
        """The ``names`` / ``names_language`` keywords of a synthesis of ``text`` (empty: none to give)."""
        found = names_in(text, self.names[0]) if self.names is not None else []
        return {"names": found, "names_language": self.names[1]} if found else {}

    @property
    def tts(self):
        if self._tts is None:
            opts: dict[str, Any] = {}
            cls = TTS_BACKENDS.load(self.tts_name)
            if cls.adapts_voices:  # its adapted voices are files of voices/<lang>/
                opts["voice_dir"] = self.ctx.layout.abs(L.adapted_voices_dir(self.ctx.language.code))
            elif self.tts_name == "piper" and self.ctx.config.voice_dir is not None:
                opts["voice_dir"] = self.ctx.config.voice_dir
            self._tts = TTS_BACKENDS.create(self.tts_name, **opts)
        return self._tts

    def line_translator(self, script: Script):
        """The script's :class:`~lipdub.translation.LineTranslator` (for shorter re-translations)."""
        if self._translator is None:
            self._translator = line_translator(self.ctx, create_translator(self.ctx, translator_name(self.ctx)), script)
        return self._translator

    def fallback_voice(self, seg: Segment, script: Script) -> str | None:
        """The stock voice a misheard line of ``seg``'s speaker may be re-spoken with (none for a voice a person chose)."""
        if explicit_voice(self.ctx, script, seg.speaker) is not None:
            return None
        adapted = self.ctx.adapted_voices(self.tts_name).get(seg.speaker)
        return adapted.fallback_voice if adapted is not None else None

    def _voice(self, seg: Segment, script: Script, voice: str | None) -> tuple[str | None, float]:
        """The voice to speak ``seg`` with (``voice`` when given) and its natural speed."""
        ctx, tts = self.ctx, self.tts
        prof = ctx.voice_profiles().get(seg.speaker)
        if voice is None:
            voice = voice_for(ctx, seg, script, ctx.language.code, self.tts_name)
            if tts.clones and voice is None and prof is not None:
                if seg.speaker not in self.clones:
                    self.clones[seg.speaker] = tts.clone(prof.name, ctx.layout.abs(L.VOICES_DIR) / prof.reference_path)
                voice = self.clones[seg.speaker]
        adapted = ctx.adapted_voices(self.tts_name).get(seg.speaker)
        if adapted is not None and voice == adapted.voice_id:  # also when a remedy names it again
            return voice, adapted.natural_speed
        return voice, tts.natural_speed(ctx.language, voice)

    def fit(self, seg: Segment, script: Script, target: TargetLine, slot, *, voice: str | None = None, split: bool = False,
            start_rate: float = 1.0, text: str | None = None, remedies: tuple[str, ...] = (), spoken: str | None = None) -> Candidate:
        """Speak ``target`` (or ``text``) for ``seg`` and fit it into ``slot``. With no remedy the whole
        isochrony loop runs (faster TTS, re-translation, stretch); a re-synthesis for intelligibility
        (``remedies``) makes one synthesis at ``start_rate`` (down to the backend's ``min_rate``) with
        ``voice`` / ``split``, giving the TTS ``spoken`` instead of the line's text when set (a word
        pause: the line, its subtitle and its WER keep the text), and stretches the rest."""
        ctx, tts, code = self.ctx, self.tts, self.ctx.language.code
        voice, natural = self._voice(seg, script, voice)
        prof = ctx.voice_profiles().get(seg.speaker)
        matcher = prof if (self.match and prof is not None) else None

        def speak(text: str, rate: float) -> tuple[Speech, dict | None]:
            text = spoken or text  # with a remedy the loop makes one synthesis of the line's text
            phrases = split_phrases(text) if split else [text]
            parts = [tts.synthesize(t, ctx.language, voice=voice, rate=rate, **self.name_options(t)) for t in phrases]
            speech = parts[0] if len(parts) == 1 else join_speech(parts)
            if matcher is None:
                return speech, None
            try:
                samples, settings = match_voice(speech.samples, speech.sample_rate_hz, matcher)
            except NotMatchable as exc:  # a one-word line: kept as synthesized, and said so
                return speech, {"skipped": str(exc)}
            return Speech(samples, speech.sample_rate_hz, speech.phonemes, speech.voice), settings.as_dict()

        policy = line_policy(ctx, seg, script, code)
        shorten = None
        if not remedies:
            shorten = shortener(self.line_translator(script), script, seg, slot, ctx)
        else:
            policy = replace(policy, max_attempts=1)
        line = fit_line(text or target.text, slot, policy, speak, shorten, MIX_RATE_HZ, max_backend_rate=float(tts.max_rate),
                        natural_speed=natural, start_rate=start_rate, min_backend_rate=float(tts.min_rate))
        for h in line.history:
            if h.stage == "synthesis":
                h.voice, h.remedy = voice, (remedies[-1] if remedies else None)
                if spoken is not None:
                    h.action = f"{h.action} (spoken as: {spoken})"
        return Candidate(line, voice, remedies, split, extra={"policy": line_policy(ctx, seg, script, code)}, spoken=spoken)


class Synthesize(Stage):
    name = "synthesize"
    # 3: natural speed, adapted voices, intelligibility loop; 4: kokoro lines sped up by the stretch
    # rather than Kokoro's speed (kokoro.MAX_INTELLIGIBLE_RATE 1.0), a line's first word heard as its own
    # and every line heard by deterministic decoding (lipdub.runtime.WHISPER_TEMPERATURE); 5: kept names
    # read with the source language's pronunciation where the TTS can (TextToSpeech.reads_names, issue 14);
    # 6: espeak-ng lines synthesized from one pristine library state (backends/tts/espeak_zygote.py);
    # 7: lines heard in context, where they are placed with their neighbours, at the dub's loudness (hearing.HEARD_IN);
    # 8: a line that overruns its slot delays the next ones (timing/placement.py), heard and written so;
    # 9: remedies chosen by what was misheard (hearing.diagnose): a mostly heard line slower (below rate 1.0
    # down to the TTS's min_rate), then with a pause before the misheard word, then the other voice / split
    version = 9
    per_language = True

    def prepare(self, ctx: PipelineContext) -> None:
        if ctx.config.redo_failed:  # lines the last report did not pass get a re-fit request (qc/redo.py)
            script = ctx.script()
            mark_failed_segments(ctx.project, script, ctx.language.code, lambda seg: line_policy(ctx, seg, script, ctx.language.code))

    def _hearing_key(self, ctx: PipelineContext) -> tuple | None:
        cfg = ctx.config
        if cfg.check_intelligibility is False:
            return None
        return (cfg.asr_model, cfg.check_intelligibility, Thresholds().line_wer.pass_at, HEARD_IN,
                heard_loudness_lufs(cfg.loudness().target_lufs))

    def _names(self, ctx: PipelineContext, script: Script, tts_name: str) -> tuple[tuple[list[str], Any] | None, str]:
        """``((kept names, their language) or None, note)``: :func:`~lipdub.pipeline.lines.names_reader`."""
        language, note = names_reader(ctx, tts_name)
        if language is None:
            return None, note
        names = kept_names(ctx, script)
        return ((names, language) if names else None), (note if names else "no kept names")

    def _keys(self, ctx: PipelineContext) -> dict[int, str]:
        script = ctx.script()
        slots = compute_slots(script.segments, ctx.info.duration_s)
        tts_name = tts_for(ctx, ctx.language)
        hk = self._hearing_key(ctx)
        names, _ = self._names(ctx, script, tts_name)
        return {s.id: segment_key(ctx, s, ctx.language.code, tts_name, slots[s.id], script, hk, names) for s in script.segments}

    def inputs(self, ctx: PipelineContext) -> list:
        return [tts_for(ctx, ctx.language), self._keys(ctx)]

    def total(self, ctx: PipelineContext) -> int | None:
        return len(ctx.script().segments)

    def run(self, ctx: PipelineContext) -> StageOutput:
        code, p = ctx.language.code, ctx.project
        tts_name, keys = tts_for(ctx, ctx.language), self._keys(ctx)
        script = ctx.script()
        slots = compute_slots(script.segments, ctx.info.duration_s)
        names, names_note = self._names(ctx, script, tts_name)
        synth = _LineSynth(ctx, tts_name, names)
        tts_dir = p.path(f"{L.tts_dir(code)}/.keep").parent
        wanted: set[str] = set()
        made, reused, retranslated, todo = [], [], [], []
        for seg in script.segments:
            stem = L.tts_stem(seg.id, keys[seg.id])
            wav, meta = tts_dir / f"{stem}.wav", tts_dir / f"{stem}.json"
            wanted |= {wav.name, meta.name}
            target = seg.targets.get(code)
            if target is None or not target.text.strip():
                continue
            if wav.exists() and meta.exists():
                target.fit = _reuse_fit(meta, target)
                reused.append(seg.id)
            else:
                todo.append((seg, target, slots[seg.id], wav, meta))
        hearing, note = hearing_for(ctx) if todo else (None, "no new line")
        done, before = len(reused), []
        for i in range(0, len(todo), BATCH_LINES):
            batch = todo[i:i + BATCH_LINES]
            chosen = _fit_batch(ctx, synth, script, batch, hearing, before)
            placed = _rippled(before + [(seg, *_placed(cand)) for (seg, *_), (cand, _) in zip(batch, chosen)])
            before = [(batch[-1][0], *placed[-1])]
            for (seg, target, slot, wav, meta), (cand, history) in zip(batch, chosen):
                if _write_fit(ctx, synth, cand, history, hearing, target, slot, wav, meta):
                    retranslated.append(seg.id)
                made.append(seg.id)
            done += len(batch)
            ctx.hooks.stage_progress(self.record_name(ctx), done, len(script.segments))
        for seg in script.segments:
            t = seg.targets.get(code)
            if t is not None and t.fit is not None and t.fit.audio_path:
                phonemes = Path(L.phonemes_of(t.fit.audio_path)).name
                if (tts_dir / phonemes).exists():
                    wanted.add(phonemes)
        for f in tts_dir.iterdir():  # lines whose text or slot changed leave stale files
            if f.is_file() and f.name not in wanted and f.name != ".keep":
                f.unlink()
        delayed = place_fits(script.segments, code, slots)
        p.write_json(f"{L.tts_dir(code)}/{PLACEMENT_JSON}", _placement(script, code))
        wanted.add(PLACEMENT_JSON)
        p.save_script(script)
        arts = sorted(f"{L.tts_dir(code)}/{n}" for n in wanted if (tts_dir / n).exists())
        adapted = {spk: v.voice_id for spk, v in ctx.adapted_voices(tts_name).items()}
        details = _details(script, code, made, reused, retranslated, synth.match and bool(ctx.voice_profiles()), adapted,
                           note if todo else _reused_note(script, code))
        details.names, details.delayed_segments = names_note, delayed
        return StageOutput(arts or [L.SCRIPT], details, tts_name)


def _placed(c: Candidate) -> tuple[float, Any]:
    """``(placed_start_s, samples)`` of a candidate's fitted speech (its own fit)."""
    return c.line.fitted.placed_start_s, c.line.fitted.samples


def _rippled(lines: list[tuple[Segment, float, Any]]) -> list[tuple[float, Any]]:
    """``(start_s, samples)`` per ``(segment, own start_s, samples at MIX_RATE_HZ)``, placed as the
    final placement will be (:func:`~lipdub.timing.placement.ripple_starts`)."""
    spans = [LineSpan(seg.speaker, seg.start_s, seg.end_s, start, len(x) / MIX_RATE_HZ) for seg, start, x in lines]
    return [(start, x) for start, (_, _, x) in zip(ripple_starts(spans), lines)]


def _placement(script: Script, code: str) -> dict[str, Any]:
    """Each fitted line's placement: ``{segment id: {start_s, end_s, delayed_s}}``."""
    fits = {s.id: s.targets[code].fit for s in script.segments if code in s.targets and s.targets[code].fit is not None}
    return {str(i): {"start_s": round(f.placed_start_s, 6), "end_s": round(f.placed_end_s, 6), "delayed_s": f.delayed_s}
            for i, f in fits.items()}


def _hear_pending(hearing: Hearing, cands: list[list[Candidate]], pending: list[int], before: list, segs: list[Segment]) -> list:
    """What the viewer would hear of each pending line: the batch heard on its timeline
    (:func:`~lipdub.qc.intelligibility.hear_in_context`), the pending lines' newest versions among the
    others' best ones so far and ``before`` (the previous batch's last line, ``(segment, start_s,
    samples)``, context only), each placed after the ripple (:func:`_rippled`); ``segs``: the batch's segments."""
    now = [cs[-1] if i in pending else best_candidate(cs, hearing.threshold) for i, cs in enumerate(cands)]
    placed = _rippled(before + [(seg, *_placed(c)) for seg, c in zip(segs, now)])
    heard = hear_in_context(hearing.model, placed, MIX_RATE_HZ, hearing.language, scored=[len(before) + i for i in pending],
                            loudness_lufs=hearing.loudness_lufs)
    return [heard[len(before) + i] for i in pending]


def _fit_batch(ctx: PipelineContext, synth: _LineSynth, script: Script, batch: list, hearing: Hearing | None, before: list) -> list:
    """Fit every line of ``batch``, hear them in context (:func:`_hear_pending`), re-synthesize the
    misheard ones (one remedy per round, within each line's ``max_attempts``, chosen by
    :func:`~lipdub.pipeline.hearing.diagnose` and :func:`~lipdub.pipeline.hearing.next_remedy`; the
    diagnosis and remedy are written in the heard attempt's ``action``); returns per line
    ``(kept candidate, full history)``."""
    cands = [[synth.fit(seg, script, target, slot)] for seg, target, slot, _, _ in batch]
    _squeeze([cs[0] for cs in cands], batch, before)
    pending = list(range(len(batch))) if hearing is not None else []
    while pending:
        heard = _hear_pending(hearing, cands, pending, before, [b[0] for b in batch])
        again = []
        for i, h in zip(pending, heard):
            seg, target, slot, _, _ = batch[i]
            c = cands[i][-1]
            c.heard, c.wer = h, round(h.wer(c.line.text), 4)
            last = [a for a in c.line.history if a.stage == "synthesis"][-1]
            last.wer, last.heard = c.wer, h.text
            if c.wer <= hearing.threshold:
                continue
            used = sum(x.line.syntheses for x in cands[i])
            diag, fallback = diagnose(c.line.text, h.text, hearing.language), synth.fallback_voice(seg, script)
            min_rate = slowest_rate(c, float(synth.tts.min_rate))
            remedy = next_remedy(c, fallback, diag, min_rate) if used < c.extra["policy"].max_attempts else None
            last.action = f"{last.action}; misheard (WER {c.wer:g}, {diag.describe(c.line.text)}): " + (remedy or "flagged")
            if remedy is None:
                continue
            voice = fallback if remedy == "other voice" else c.voice
            rate = lower_rate(c.line.tts_rate, min_rate) if remedy == "lower speed" else c.line.tts_rate
            spoken = word_pause_text(c.line.text, diag) if remedy == "word pause" else c.spoken
            cands[i].append(synth.fit(seg, script, target, slot, voice=voice, split=c.split or remedy == "phrase split",
                                      start_rate=rate, text=c.line.text, remedies=(*c.remedies, remedy), spoken=spoken))
            again.append(i)
        pending = again
    best = [best_candidate(cs, hearing.threshold) if hearing is not None else cs[0] for cs in cands]
    _squeeze(best, batch, before)  # a re-synthesis may have changed the chain
    return [(b, [a for c in cs for a in c.line.history]) for b, cs in zip(best, cands)]


def _squeeze(cands: list[Candidate], batch: list, before: list) -> None:
    """In order, speed up each line of ``batch`` (one candidate each) that the ripple delays past its
    free time, within its speed-up limit (:func:`~lipdub.timing.placement.squeezed`; ``before``: as
    :func:`_hear_pending`); sets the candidates' fitted speech in place."""
    for i, c in enumerate(cands):
        placed = _rippled(before + [(b[0], *_placed(x)) for b, x in zip(batch, cands)])
        start = placed[len(before) + i][0]
        if start > c.line.fitted.placed_start_s + OVERRUN_TOLERANCE_S:
            extra = max(1.0, c.line.speedup_limit / c.line.speedup)
            c.line.fitted = squeezed(c.line.fitted, batch[i][2], start, extra)


def _reused_note(script: Script, code: str) -> str:
    heard = [s.targets[code].fit.hearing for s in script.segments if code in s.targets and s.targets[code].fit]
    models = sorted({h.model for h in heard if h is not None})
    return f"lines reused (heard by {', '.join(models)})" if models else "lines reused (not heard)"


def _reuse_fit(meta: Path, target: TargetLine) -> FitReport:
    """The fit record of a line whose speech is already made."""
    fit = FitReport.model_validate_json(meta.read_text())
    if fit.history and fit.history[-1].text != target.text and target.text == target.machine_text:
        # a run killed after this line's fit was written but before script.json: take the loop's shorter text
        target.shortened_from = target.shortened_from or target.text
        target.text = target.machine_text = fit.history[-1].text
    return fit


def _write_fit(ctx: PipelineContext, synth: _LineSynth, cand: Candidate, history: list, hearing: Hearing | None,
               target: TargetLine, slot, wav: Path, meta: Path) -> bool:
    """Write one line's WAV, fit JSON (atomically, last) and phoneme timings, and set ``target.fit``;
    returns whether the isochrony loop re-translated it shorter."""
    p, line = ctx.project, cand.line
    fitted = line.fitted
    write_audio(wav, fitted.samples, MIX_RATE_HZ)
    policy = cand.extra["policy"]
    fit = fitted.report(synth.tts_name, slot, attempts=sum(1 for a in history if a.stage == "synthesis"), audio_path=p.rel(wav))
    fit.tts_rate, fit.natural_speed = round(line.tts_rate, 4), round(line.natural_speed, 4)
    fit.max_stretch, fit.on_screen = policy.max_speedup, policy.on_screen
    fit.voice_match, fit.history = line.match, history
    fit.voice = cand.voice if cand.voice is not None else fit.voice
    if hearing is not None and cand.wer is not None:
        fit.hearing = LineHearing(wer=cand.wer, transcript=cand.heard.text if cand.heard else "", threshold=hearing.threshold,
                                  flagged=cand.wer > hearing.threshold, model=hearing.model_name,
                                  attempts=sum(1 for a in history if a.stage == "synthesis" and a.wer is not None))
    shortened = line.text != target.text
    if shortened:
        target.shortened_from = target.shortened_from or target.text
        target.text = target.machine_text = line.text
    if fitted.phonemes:
        p.write_json(L.phonemes_of(p.rel(wav)), [asdict(ph) for ph in fitted.phonemes])
    p.write_json(p.rel(meta), fit)  # atomic: a killed run never leaves half a record
    target.fit = fit
    return shortened


def _details(script: Script, code: str, made: list[int], reused: list[int], retranslated: list[int], voice_matched: bool,
             adapted: dict[str, str], hearing: str) -> SynthesizeDetails:
    fits = {s.id: s.targets[code].fit for s in script.segments if code in s.targets and s.targets[code].fit}
    return SynthesizeDetails(
        synthesized=made, reused=reused, retranslated=retranslated,
        max_stretch_ratio=max((f.stretch_ratio for f in fits.values()), default=1.0),
        max_speedup=max((f.speedup for f in fits.values()), default=1.0),
        over_limit_segments=[i for i, f in fits.items() if f.max_stretch is not None and f.speedup > f.max_stretch + 1e-3],
        overrun_segments=[i for i, f in fits.items() if f.overrun_s > 0.01],
        voice_matched=voice_matched, adapted_voices=adapted, hearing=hearing,
        resynthesized_misheard=[i for i, f in fits.items() if any(a.remedy for a in f.history)],
        flagged_misheard=[i for i, f in fits.items() if f.hearing is not None and f.hearing.flagged],
    )
