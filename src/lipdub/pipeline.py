"""The dubbing pipeline (DESIGN.md section 1): stages 1-9 and 13 over one project directory.

Python API::

    from lipdub.config import DubConfig
    from lipdub.pipeline import dub

    result = dub(DubConfig(input="talk.mp4", targets=["es"], output="out/"))
    print(result.outputs["es"].media)

Every stage computes a hash of its inputs, is skipped when the project's manifest has a record with
the same hash and its artifacts exist, and otherwise runs and records its artifacts and timing. The
language-independent stages (ingest ... transcribe) run once for all target languages.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .audio import read_audio, write_audio
from .config import DubConfig
from .errors import ConfigError, InputError
from .languages import Language, parse_language
from .project import Project, RunRecord, StageRecord, hash_json, input_sha256, now_iso
from .script import FitReport, Script, Segment, Speaker, TargetLine, Word
from .media import probe as ingest_stage
from . import mixing as mix_stage
from .media import render as render_stage
from .contracts.diarize import DIARIZERS, SpeakerTurn
from .contracts.separate import SEPARATORS
from .contracts.synthesize import TTS_BACKENDS, Speech
from .contracts.transcribe import TRANSCRIBERS, Transcript, TranscriptSegment, TranscriptWord
from .contracts.translate import TRANSLATORS, TranslationRequest
from .contracts.vad import VADS, SpeechRegion
from .subtitles import Cue, write_srt, write_vtt

log = logging.getLogger(__name__)

MIX_RATE_HZ = ingest_stage.MIX_RATE_HZ
ANALYSIS_RATE_HZ = ingest_stage.ANALYSIS_RATE_HZ
UNTIL = ("faces", "script", "translate", "synthesize", "mix", "render")
LIPSYNC_PAD_S = 0.2  # frames re-animated around a line: the mouth settles before and after speech
MIN_GAP_S = 0.08  # silence kept between two dubbed lines
MAX_BORROW_BEFORE_S = 0.25  # how early a line may start before its source slot
# Bump a stage's version when its algorithm changes, so old records are recomputed.
STAGE_VERSIONS = {"ingest": 1, "separate": 1, "vad": 1, "diarize": 1, "transcribe": 1, "script": 1, "faces": 1, "speakers": 1, "lipsync": 1,
                  "translate": 2, "synthesize": 2, "mix": 2, "render": 1, "profiles": 1, "report": 2}


class PipelineHooks:
    """Progress callbacks (pattern of pyannote.audio's hooks). Override what you need.

    ``stage`` names are ``ingest``, ``separate``, ... and ``translate:es`` for per-language stages.
    """

    def stage_started(self, stage: str, total: int | None = None) -> None:
        """A stage begins; ``total`` is its number of work items when known."""

    def stage_progress(self, stage: str, done: int, total: int) -> None:
        """``done`` of ``total`` work items of ``stage`` are finished."""

    def stage_finished(self, stage: str, record: StageRecord, skipped: bool) -> None:
        """A stage ended; ``skipped`` when its inputs were unchanged and its record was reused."""


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


def output_paths(config: DubConfig, has_video: bool, languages: list[Language]) -> dict[str, Path]:
    """Where each language's main output goes.

    ``output`` with a media suffix is a file (with several languages ``NAME.<lang>.SUFFIX`` beside
    it); otherwise it is a directory receiving ``<input stem>.<lang>.mp4`` (``.wav`` for audio).

    Raises:
        ConfigError: the suffix does not fit the input (a video suffix for an audio-only input, ...).
    """
    out = Path(config.output)
    suffix = out.suffix.lower()
    allowed = render_stage.VIDEO_SUFFIXES if has_video else render_stage.AUDIO_SUFFIXES
    if suffix in render_stage.VIDEO_SUFFIXES | render_stage.AUDIO_SUFFIXES:
        if suffix not in allowed:
            kind = "a video" if has_video else "an audio-only file"
            raise ConfigError(f"the input is {kind}, so the output cannot be {out.name}", f"use one of {', '.join(sorted(allowed))}")
        if len(languages) == 1:
            return {languages[0].code: out}
        return {lang.code: out.with_name(f"{out.stem}.{lang.code}{out.suffix}") for lang in languages}
    default_suffix = ".mp4" if has_video else ".wav"
    stem = Path(config.input).stem
    return {lang.code: out / f"{stem}.{lang.code}{default_suffix}" for lang in languages}


def default_project_dir(config: DubConfig) -> Path:
    out = Path(config.output)
    base = out.parent if out.suffix else out
    return base / f"{Path(config.input).stem}.lipdub"


def lipsync_options(config: DubConfig) -> dict:
    """Keyword options of the lip-sync backend from ``config`` (None: not given, the backend's default)."""
    return {"checkpoint": config.lipsync_checkpoint, "device": config.lipsync_device, "command": config.lipsync_command}


class Dubber:
    """Runs the pipeline for one :class:`DubConfig` (use :func:`dub`)."""

    def __init__(self, config: DubConfig, hooks: PipelineHooks | None = None) -> None:
        self.config = config
        self.hooks = hooks or PipelineHooks()
        self.targets = [parse_language(t) for t in config.targets]
        self.source_language = parse_language(config.source_language) if config.source_language else None
        if config.lipsync != "none":  # unknown backend, missing checkpoint, bad option: fail before any work
            from .lipsync.api import create_backend

            self._lipsync_backend = create_backend(config.lipsync, lipsync_options(config))
        elif any(v is not None for v in lipsync_options(config).values()):
            raise ConfigError("--lipsync none takes no lip-sync option", "drop --lipsync-checkpoint, --lipsync-device and --lipsync-command")
        for name, registry in ((config.separation, SEPARATORS), (config.translator, TRANSLATORS)):
            registry.load(name)  # unknown name or missing package: fail before any work
        if config.tts != "auto":
            TTS_BACKENDS.load(config.tts)
        if config.transcript is not None and not Path(config.transcript).is_file():
            raise InputError(f"transcript {config.transcript} does not exist", "check the --transcript path")
        self.project = Project(config.project_dir or default_project_dir(config))
        self.ran: list[str] = []
        self.skipped: list[str] = []

    # -- generic stage runner --------------------------------------------------------------
    def _stage(self, name: str, inputs: Any, fn: Callable[[], tuple[list, dict, str | None]], media_s: float | None = None,
               total: int | None = None, force: bool = False) -> StageRecord:
        """Run ``fn`` unless the stage's record has the same input hash (and artifacts); ``force``
        runs it anyway (a stage whose work list is not captured by its inputs)."""
        base = name.split(":")[0]
        input_hash = hash_json(base, STAGE_VERSIONS[base], inputs)
        if not force and self.project.is_fresh(name, input_hash):
            rec = self.project.manifest.stages[name]
            self.skipped.append(name)
            self.hooks.stage_finished(name, rec, True)
            return rec
        self.hooks.stage_started(name, total)
        t0, started = time.monotonic(), now_iso()
        artifacts, details, backend = fn()
        rec = self.project.record(name, input_hash, artifacts, t0, started, backend=backend, media_duration_s=media_s, details=details)
        self.ran.append(name)
        self.hooks.stage_finished(name, rec, False)
        return rec

    # -- stages ----------------------------------------------------------------------------
    def run(self, until: str = "render") -> DubResult:
        """Run the stages up to and including ``until`` (``faces``, ``script``, ``translate``,
        ``synthesize``, ``mix`` or ``render``), for stage-by-stage work; the default runs the whole dub."""
        if until not in UNTIL:
            raise ConfigError(f"unknown last stage {until!r}", f"use one of {', '.join(UNTIL)}")
        cfg = self.config
        if not self.targets and until not in ("faces", "script"):
            raise ConfigError("no target language given", "pass --to es (or several: --to es,fr)")
        src_path = Path(cfg.input).resolve()
        with self.project:
            run_started = now_iso()
            info = ingest_stage.probe(src_path)  # validates before anything else
            outputs = output_paths(cfg, info.has_video, self.targets) if self.targets else {}
            if self.source_language is not None and until not in ("faces", "script"):
                self._check_pairs(self.source_language)
            self.project.manifest.config = json.loads(cfg.model_dump_json())
            sha = input_sha256(self.project, src_path)
            self.project.save_manifest()
            dur = info.duration_s

            ing = self._stage("ingest", [sha], lambda: self._ingest(src_path, info), dur)
            if until != "faces":
                self._stage("separate", [ing.output_hash, cfg.separation], self._separate, dur)
            vad = self._stage("vad", [ing.output_hash], self._vad, dur)
            dia = self._stage("diarize", [ing.output_hash, vad.output_hash, cfg.speakers], self._diarize, dur)
            if info.has_video:
                fac = self._stage("faces", [sha], lambda: self._faces(src_path, info), dur,
                                  total=info.video.frame_count)
                self._stage("speakers", [fac.output_hash, dia.output_hash], self._match_speakers)
            if until == "faces":
                self.project.manifest.runs.append(RunRecord(started_at=run_started, finished_at=now_iso(), ran=list(self.ran), skipped=list(self.skipped)))
                self.project.save_manifest()
                return DubResult(self.project.root, "", {}, dict(self.project.manifest.stages), self.ran, self.skipped)
            if cfg.transcript is not None:
                from .project import sha256_file

                tr_inputs = ["import", sha256_file(cfg.transcript), cfg.source_language]
            else:
                tr_inputs = [ing.output_hash, cfg.asr_model, cfg.source_language]
            tr = self._stage("transcribe", tr_inputs, self._transcribe, dur)
            self._stage("script", [tr.output_hash, dia.output_hash], self._build_script)
            script = self._script()
            src_lang = parse_language(script.source_language)
            if until != "script":
                self._check_pairs(src_lang)
                self._run_profiles(dur)

            results: dict[str, LanguageOutputs] = {}
            if until != "script":
                for lang in self.targets:
                    results[lang.code] = self._dub_language(lang, src_lang, info, outputs[lang.code], until)
            self.project.manifest.runs.append(
                RunRecord(started_at=run_started, finished_at=now_iso(), ran=list(self.ran), skipped=list(self.skipped))
            )
            self.project.save_manifest()
        return DubResult(self.project.root, src_lang.code, results, dict(self.project.manifest.stages), self.ran, self.skipped)

    def _check_pairs(self, src: Language) -> None:
        translator = TRANSLATORS.create(self.config.translator) if self.config.translator != "llm" else None
        for tgt in self.targets:
            if tgt.code == src.code:
                raise ConfigError(f"the source and target language are both {src.code}", "pick another --to language")
            if translator is not None and not translator.supports(src, tgt):
                raise ConfigError(
                    f"no {self.config.translator} translator for {src.code} -> {tgt.code}",
                    f"install the pair if Debian has it (apt-cache search apertium {src.code}), or use --translator llm",
                )

    def _script(self) -> Script:
        script = self.project.load_script()
        if script is None:  # pragma: no cover - the script stage always writes it
            raise InputError("script.json is missing", "re-run lipdub dub")
        return script

    def _ingest(self, src: Path, info: ingest_stage.MediaInfo):
        mix, analysis = ingest_stage.decode_audio(src, info)
        p = self.project
        write_audio(p.path("audio/mix_48k.wav"), mix, MIX_RATE_HZ)
        write_audio(p.path("audio/analysis_16k.wav"), analysis, ANALYSIS_RATE_HZ)
        p.write_json("media.json", info)
        return ["audio/mix_48k.wav", "audio/analysis_16k.wav", "media.json"], {"video": info.video is not None, "audio_layout": info.audio.layout}, "pyav"

    def _separate(self):
        name = self.config.separation
        sep = SEPARATORS.create(name)
        mix, sr = read_audio(self.project.root / "audio/mix_48k.wav")
        res = sep.separate(mix, sr)
        arts: list[str] = []
        if res.dialogue is not None and res.music_effects is not None:
            write_audio(self.project.path("audio/dialogue_48k.wav"), res.dialogue, sr)
            write_audio(self.project.path("audio/me_48k.wav"), res.music_effects, sr)
            arts = ["audio/dialogue_48k.wav", "audio/me_48k.wav"]
        else:
            for stale in ("audio/dialogue_48k.wav", "audio/me_48k.wav"):
                (self.project.root / stale).unlink(missing_ok=True)
            self.project.write_json("audio/separation_none.json", {"separation": "none"})
            arts = ["audio/separation_none.json"]
        return arts, {"delay_samples": res.delay_samples}, name

    def _analysis_audio(self) -> np.ndarray:
        audio, _ = read_audio(self.project.root / "audio/analysis_16k.wav", mono=True)
        return audio

    def _vad(self):
        vad = VADS.create("silero")
        regions = vad.detect(self._analysis_audio(), ANALYSIS_RATE_HZ)
        self.project.write_json("analysis/vad.json", [asdict(r) for r in regions])
        return ["analysis/vad.json"], {"regions": len(regions), "speech_s": round(sum(r.end_s - r.start_s for r in regions), 3)}, "silero"

    def _diarize(self):
        regions = [SpeechRegion(**r) for r in self.project.read_json("analysis/vad.json")]
        turns: list[SpeakerTurn] = []
        if regions:
            diarizer = DIARIZERS.create("resemblyzer")
            turns = diarizer.diarize(self._analysis_audio(), ANALYSIS_RATE_HZ, regions, self.config.speakers)
        self.project.write_json("analysis/diarization.json", [asdict(t) for t in turns])
        return ["analysis/diarization.json"], {"speakers": len({t.speaker for t in turns}), "turns": len(turns)}, "resemblyzer"

    def _faces(self, src: Path, info: ingest_stage.MediaInfo):
        from .faces.analyze import analyze_video
        from .faces.shots import detect_shots

        frame_times = video_frame_times(src)
        np.save(self.project.path("faces/frame_times.npy"), frame_times)
        shots = detect_shots(src, len(frame_times))
        progress = lambda done, total: self.hooks.stage_progress("faces", done, total)  # noqa: E731
        analysis = analyze_video(src, shots, progress=progress)
        faces_dir = self.project.path("faces/.keep").parent
        for stale in faces_dir.glob("track_*.npz"):
            stale.unlink()
        paths = analysis.save(faces_dir)
        details = {"shots": len(analysis.shots), "tracks": len(analysis.tracks), "frames": analysis.frame_count}
        if not analysis.tracks:
            details["note"] = "no faces found: lip-sync will be skipped"
            log.warning("%s: no faces found; the dub goes on and lip-sync will be skipped", src.name)
        return [*paths, self.project.path("faces/frame_times.npy")], details, "mediapipe"

    def _match_speakers(self):
        from .faces.speakers import match_speakers
        from .contracts.faces import FaceAnalysis

        analysis = FaceAnalysis.load(self.project.root / "faces")
        turns = [SpeakerTurn(**t) for t in self.project.read_json("analysis/diarization.json")]
        frame_times = np.load(self.project.root / "faces/frame_times.npy")
        matches, turn_matches = match_speakers(analysis, turns, self._analysis_audio(), ANALYSIS_RATE_HZ, frame_times)
        note = None
        if len(matches) == 1 and matches[0].track is None and len(analysis.tracks) == 1 \
                and len(analysis.tracks[0].frames) >= 0.5 * analysis.frame_count:
            # A talking-head video: one voice, one face on screen most of the time. Its mouth may not
            # follow the soundtrack (a voice-over, a re-dub) yet it is the face to animate; said so.
            matches[0].track = analysis.tracks[0].id
            note = "one speaker and one face: the face is assigned to the speaker although its mouth does not follow the soundtrack"
            log.warning(note)
        self.project.write_json("faces/speakers.json", {"speakers": [asdict(m) for m in matches], "turns": [asdict(t) for t in turn_matches], "note": note})
        script = self.project.load_script()
        if script is not None:  # the script exists already: carry the new match into it
            _apply_speaker_tracks(script, self.project.read_json("faces/speakers.json"))
            self.project.save_script(script)
        return ["faces/speakers.json"], {"tracks": {m.speaker: m.track for m in matches}, "note": note}, "landmark-correlation"

    def _transcribe(self):
        cfg = self.config
        if cfg.transcript is not None:
            from .backends.transcribe.subtitles import import_subtitles

            transcript = import_subtitles(cfg.transcript, cfg.source_language)
            backend = "import"
        else:
            asr = TRANSCRIBERS.create("faster-whisper", model=cfg.asr_model)
            transcript = asr.transcribe(self._analysis_audio(), ANALYSIS_RATE_HZ, language=cfg.source_language)
            backend = "faster-whisper"
        self.project.write_json("analysis/transcript.json", asdict(transcript))
        details = {"language": transcript.language, "language_probability": transcript.language_probability,
                   "segments": len(transcript.segments), "model": transcript.model}
        return ["analysis/transcript.json"], details, backend

    def _build_script(self):
        tr_raw = self.project.read_json("analysis/transcript.json")
        transcript = Transcript(
            language=tr_raw["language"],
            language_probability=tr_raw.get("language_probability"),
            model=tr_raw.get("model"),
            segments=[TranscriptSegment(s["start_s"], s["end_s"], s["text"], [TranscriptWord(**w) for w in s["words"]]) for s in tr_raw["segments"]],
        )
        turns = [SpeakerTurn(**t) for t in self.project.read_json("analysis/diarization.json")]
        script = build_script(transcript, turns)
        script.transcript_hash = self.project.output_hash("transcribe")
        if (self.project.root / "faces/speakers.json").exists():
            _apply_speaker_tracks(script, self.project.read_json("faces/speakers.json"))
        self.project.save_script(script)
        return ["script.json"], {"segments": len(script.segments), "speakers": len(script.speakers)}, None

    # -- per language ----------------------------------------------------------------------
    def _dub_language(self, lang: Language, src_lang: Language, info: ingest_stage.MediaInfo, out_media: Path, until: str) -> LanguageOutputs:
        cfg = self.config
        L = lang.code
        script = self._script()
        seg_sources = [(s.id, s.source_text, s.start_s, s.end_s) for s in script.segments]
        # Target texts are not inputs (the stage writes them, people edit them): a line is translated
        # when it has no target yet or its source text changed since it was translated.
        pending = any(_needs_translation(s, L, cfg.translator) for s in script.segments)
        slots = compute_slots(script.segments, info.duration_s)  # segment times only: translation keeps them
        self._stage(f"translate:{L}", [cfg.translator, src_lang.code, seg_sources],
                    lambda: self._translate(lang, src_lang, slots), total=len(script.segments), force=pending)
        script = self._script()
        if until == "translate":
            return LanguageOutputs(L, out_media, {}, {})
        tts_name = self._tts_for(lang)
        if cfg.redo_failed:  # lines the last report did not pass get a re-fit request (qc/redo.py)
            from .qc.redo import mark_failed_segments

            mark_failed_segments(self.project, script, L, lambda seg: self._policy(seg, script, L))
            script = self._script()
        keys = {s.id: self._segment_key(s, L, tts_name, slots[s.id], script) for s in script.segments}
        syn = self._stage(f"synthesize:{L}", [tts_name, keys], lambda: self._synthesize(lang, tts_name, slots, keys),
                          media_s=info.duration_s, total=len(script.segments))
        sep = self.project.manifest.stages["separate"]
        mix = self._stage(f"mix:{L}", [syn.output_hash, sep.output_hash, self.project.output_hash("ingest"), cfg.target_lufs, cfg.true_peak_dbtp],
                          lambda: self._mix(lang), media_s=info.duration_s)
        if until in ("synthesize", "mix"):
            return LanguageOutputs(L, out_media, {}, {k: self.project.root / f"stems/{L}/{k}.wav" for k in ("dialogue", "me", "mix")})
        lipsync_video, lipsync_rotation = None, 0
        if cfg.lipsync != "none" and info.has_video:
            script = self._script()
            mapping = [(s.id, s.track) for s in script.speakers]
            ls = self._stage(f"lipsync:{L}", [cfg.lipsync, self.project.output_hash("faces"), syn.output_hash, mapping,
                                              *([{k: str(v) for k, v in lipsync_options(cfg).items() if v is not None}] if cfg.lipsync != "retrieval" else [])],
                             lambda: self._lipsync(lang, info), media_s=info.duration_s, total=info.video.frame_count)
            if ls.details.get("video"):
                lipsync_video = self.project.root / ls.details["video"]
                lipsync_rotation = int(ls.details.get("rotate_tag_deg", 0))
        script = self._script()
        base = out_media.with_suffix("")
        subs = {
            "target_srt": base.with_name(base.name + ".srt"),
            "target_vtt": base.with_name(base.name + ".vtt"),
            "source_srt": base.with_name(f"{base.name}.{src_lang.code}.srt"),
            "source_vtt": base.with_name(f"{base.name}.{src_lang.code}.vtt"),
        }
        stems_dir = base.with_name(base.name + ".stems")
        stems = {k: stems_dir / f"{k}.wav" for k in ("dialogue", "me", "mix")}
        tgt_cues = target_cues(script, L)
        src_cues = [Cue(s.start_s, s.end_s, s.source_text) for s in script.segments]
        render_inputs = [mix.output_hash, self.project.output_hash("ingest"), str(out_media.resolve()),
                         self.project.output_hash(f"lipsync:{L}") if lipsync_video else None,
                         [asdict(c) for c in tgt_cues], [asdict(c) for c in src_cues], cfg.keep_original_audio]
        self._stage(f"render:{L}", render_inputs,
                    lambda: self._render(lang, src_lang, info, out_media, subs, stems, tgt_cues, src_cues, lipsync_video, lipsync_rotation), media_s=info.duration_s)
        from .qc.report import report_stage  # stage 14: report/<L>/ and NAME.report.{json,html} beside the output

        self._stage(f"report:{L}", [self.project.output_hash(f"render:{L}"), self.project.output_hash(f"synthesize:{L}"), cfg.target_lufs],
                    lambda: report_stage(self.project, L, out_media, Path(info.path), cfg.target_lufs), media_s=info.duration_s)
        return LanguageOutputs(L, out_media, subs, stems)

    def _lipsync(self, lang: Language, info: ingest_stage.MediaInfo):
        """Plan and composite new mouths for every on-screen speaker of the dub."""
        from .audio import resample
        from .lipsync.render import render_lipsync
        from .contracts.faces import FaceAnalysis

        L = lang.code
        p = self.project
        script = self._script()
        analysis = FaceAnalysis.load(p.root / "faces")
        frame_times = np.load(p.root / "faces/frame_times.npy")
        backend = self._lipsync_backend
        if (p.root / "audio/dialogue_48k.wav").exists() and p.manifest.stages["separate"].backend != "none":
            src48, _ = read_audio(p.root / "audio/dialogue_48k.wav", mono=True)
            source_audio = resample(src48, MIX_RATE_HZ, ANALYSIS_RATE_HZ)
        else:
            source_audio = self._analysis_audio()
        n48 = int(round(info.duration_s * MIX_RATE_HZ))
        plans, details = [], {"tracks": {}}
        for spk in script.speakers:
            track = next((t for t in analysis.tracks if t.id == spk.track), None)
            if track is None:
                continue
            lines, spans, phonemes = [], [], []
            for seg in script.segments:
                t = seg.targets.get(L)
                if seg.speaker != spk.id or t is None or t.fit is None or not t.fit.audio_path:
                    continue
                samples, _ = read_audio(p.root / t.fit.audio_path, mono=True)
                lines.append(mix_stage.PlacedLine(t.fit.placed_start_s, samples))
                spans.append((min(seg.start_s, t.fit.placed_start_s) - LIPSYNC_PAD_S, max(seg.end_s, t.fit.placed_end_s) + LIPSYNC_PAD_S))
                ph_path = p.root / t.fit.audio_path.replace(".wav", ".phonemes.json")
                if ph_path.exists():
                    phonemes += [(ph["start_s"] + t.fit.placed_start_s, ph["end_s"] + t.fit.placed_start_s, ph["phoneme"]) for ph in json.loads(ph_path.read_text())]
            if not lines:
                continue
            in_span = np.zeros(analysis.frame_count, dtype=bool)
            for a, b in spans:
                in_span[int(np.searchsorted(frame_times, a)):int(np.searchsorted(frame_times, b))] = True
            rows = np.arange(len(track.frames))
            frames = track.frames[(track.skip[rows] == 0) & in_span[track.frames]].astype(np.int64)
            if len(frames) == 0:
                details["tracks"][str(track.id)] = {"speaker": spk.id, "frames": 0, "note": "every frame skipped (pose, size or occlusion)"}
                continue
            dub = resample(mix_stage.place_lines(lines, n48, MIX_RATE_HZ), MIX_RATE_HZ, ANALYSIS_RATE_HZ)
            plan = backend.plan(analysis, track, frames, frame_times, source_audio, dub, ANALYSIS_RATE_HZ, phonemes or None)
            plans.append((plan, track))
            details["tracks"][str(track.id)] = {"speaker": spk.id, "frames": int(len(frames)),
                                                **{k: v for k, v in plan.details.items() if isinstance(v, (int, float, str))}}
        if not plans:
            details["note"] = "lip-sync skipped: no speaking face on screen" if analysis.tracks else "lip-sync skipped: no faces in the video"
            log.warning("%s", details["note"])
            p.write_json(f"lipsync/{L}/plans.json", details)
            return [f"lipsync/{L}/plans.json"], details, self.config.lipsync
        video = p.path(f"lipsync/{L}/video.mp4")
        progress = lambda done, total: self.hooks.stage_progress(f"lipsync:{L}", done, total)  # noqa: E731
        details.update(render_lipsync(Path(info.path), analysis, plans, video, progress=progress))
        for pl, tr in plans:  # figures a backend adds while rendering (e.g. the external tool's run time)
            details["tracks"][str(tr.id)].update({k: v for k, v in pl.details.items() if isinstance(v, (int, float, str))})
        details["video"] = f"lipsync/{L}/video.mp4"
        # display rotation as the clockwise MP4 'rotate' tag (PyAV reports it counter-clockwise)
        details["rotate_tag_deg"] = int(-analysis.rotation_deg) % 360
        p.write_json(f"lipsync/{L}/plans.json", {**details, "plans": [
            {"track": pl.track_id, "frames": pl.frames.tolist(),
             "source_frames": pl.source_frames.tolist() if pl.source_frames is not None else None} for pl, _ in plans]})
        return [f"lipsync/{L}/video.mp4", f"lipsync/{L}/plans.json"], details, self.config.lipsync

    def _translate(self, lang: Language, src_lang: Language, slots):
        """Translate the lines that need it, then check each new line's estimated spoken duration
        (syllables / speaker rate) against its slot and ask a translator that can shorten (``llm``)
        for a shorter version (:func:`lipdub.timing.isochrony.estimate_line`)."""
        from .timing.isochrony import estimate_line

        L = lang.code
        script = self._script()
        translator = TRANSLATORS.create(self.config.translator)
        todo = [s for s in script.segments if _needs_translation(s, L, self.config.translator)]
        too_long: list[int] = []
        shortened: list[int] = []
        if todo:
            requests = [TranslationRequest(s.source_text, round(slots[s.id].end_s - slots[s.id].start_s + slots[s.id].free_after_s, 3)) for s in todo]
            texts = translator.translate(requests, src_lang, lang)
            profiles = self._voice_profiles()
            for seg, req, text in zip(todo, requests, texts):
                line = TargetLine(text=text, machine_text=text, translator=self.config.translator,
                                  source_hash=_text_hash(seg.source_text), duration_budget_s=req.duration_budget_s)
                if text.strip():
                    prof = profiles.get(seg.speaker)
                    new_text, line.estimates = estimate_line(
                        text, slots[seg.id], self._policy(seg, script), prof.syllables_per_s if prof else None,
                        self._shortener(translator, seg, src_lang, lang), L)
                    if new_text != text:
                        line.shortened_from, line.text, line.machine_text = text, new_text, new_text
                        shortened.append(seg.id)
                    if line.estimates and line.estimates[-1].action != "fit":
                        too_long.append(seg.id)
                seg.targets[L] = line
            self.project.save_script(script)
        self.hooks.stage_progress(f"translate:{L}", len(script.segments), len(script.segments))
        details = {"translated": [s.id for s in todo], "kept": len(script.segments) - len(todo),
                   "shortened": shortened, "estimated_too_long": too_long}
        if too_long and not getattr(translator, "shortens", False):
            details["note"] = (f"{len(too_long)} line(s) are estimated too long for their slot and the {self.config.translator} "
                               "translator cannot shorten them (use --translator llm, or edit the lines in script.json)")
            log.warning("translate:%s: %s", L, details["note"])
        return ["script.json"], details, self.config.translator

    def _shortener(self, translator, seg: Segment, src_lang: Language, lang: Language):
        """``(too_long_text, budget_s) -> shorter text`` for a translator that can shorten, else None."""
        if not getattr(translator, "shortens", False):
            return None

        def shorten(text: str, budget_s: float) -> str:
            out = translator.translate([TranslationRequest(seg.source_text, budget_s, too_long=text)], src_lang, lang)[0]
            return out.strip() or text

        return shorten

    def _voice_profiles(self) -> dict:
        """Speaker id -> :class:`lipdub.voice.profile.VoiceProfile` from the profiles stage (cached per run)."""
        from .voice.profiles import load_profiles

        if getattr(self, "_profiles_cache", None) is None:
            self._profiles_cache = load_profiles(self.project.root)
        return self._profiles_cache

    def _run_profiles(self, media_s: float) -> StageRecord:
        """Stage 7 (``profiles``): one voice profile per speaker, with the voice bank if given."""
        cfg = self.config
        script = self._script()
        bank = None
        if cfg.voice_bank is not None:
            root = Path(cfg.voice_bank)
            bank = [str(root.resolve())] + sorted(
                (f.parent.name, hashlib.sha256(f.read_bytes()).hexdigest()[:16]) for f in root.glob("*/profile.json"))
        sep = self.project.manifest.stages.get("separate")
        inputs = [self.project.output_hash("ingest"), sep.output_hash if sep else None,
                  [(s.speaker, s.start_s, s.end_s, s.source_text) for s in script.segments],
                  [(s.id, s.name) for s in script.speakers], bank]
        rec = self._stage("profiles", inputs, self._profiles, media_s)
        self._profiles_cache = None
        return rec

    def _profiles(self):
        from .voice.profiles import make_profiles

        p = self.project
        script = self._script()
        sep = p.manifest.stages.get("separate")
        denoise = None
        if sep is not None and sep.backend == "dfn" and (p.root / "audio/dialogue_48k.wav").exists():
            audio, sr = read_audio(p.root / "audio/dialogue_48k.wav", mono=True)
            denoised = True
        else:
            audio, sr = read_audio(p.root / "audio/mix_48k.wav", mono=True)
            denoised = False
            status = SEPARATORS.status("dfn")
            if status.usable:
                denoise = SEPARATORS.create("dfn").enhance
            else:
                log.warning("profiles: DeepFilterNet unusable (%s): noisy references stay noisy", status.detail)
        for stale in p.root.glob("voices/*"):
            stale.unlink()
        res = make_profiles(p.root, script, audio, sr, denoised, self.config.voice_bank, denoise, script.source_language)
        res.details["source"] = "dialogue stem (DeepFilterNet)" if denoised else "mix"
        res.details["denoiser_available"] = denoised or denoise is not None
        p.save_script(script)  # a speaker may have taken a voice bank character's name
        return res.artifacts or ["script.json"], res.details, "praat+resemblyzer"

    def _policy(self, seg: Segment, script: Script, language: str | None = None):
        """The isochrony limits of a segment: on-screen speakers (a face track) keep ``--max-stretch``;
        a line with a ``redo`` request in ``language`` (``--redo-failed``) gets its limits."""
        from .timing.isochrony import policy_for

        spk = script.speaker(seg.speaker)
        policy = policy_for(bool(spk and spk.track is not None), self.config.max_stretch, self.config.max_attempts, MAX_BORROW_BEFORE_S)
        t = seg.targets.get(language) if language else None
        if t is not None and t.redo is not None:
            from dataclasses import replace

            policy = replace(policy, max_speedup=t.redo.max_speedup, max_tts_rate=t.redo.max_speedup, max_attempts=t.redo.max_attempts)
        return policy

    def _tts_for(self, lang: Language) -> str:
        if self.config.tts != "auto":
            return self.config.tts
        piper = TTS_BACKENDS.load("piper")
        try:
            if piper(voice_dir=self.config.voice_dir).supports(lang):
                return "piper"
        except Exception as exc:  # piper not installed: auto goes on to the next choice, and says so
            log.info("tts auto: piper unusable (%s)", exc)
        if lang.code == "ja":
            return "kokoro"
        return "espeak-ng"

    def _tts(self, name: str):
        opts: dict[str, Any] = {}
        if name == "piper" and self.config.voice_dir is not None:
            opts["voice_dir"] = self.config.voice_dir
        return TTS_BACKENDS.create(name, **opts)

    def _segment_key(self, seg: Segment, L: str, tts_name: str, slot, script: Script) -> str:
        """Cache key of a line's speech: everything it depends on (text as first translated when the
        isochrony loop shortened it, voice, speaker profile, matching, isochrony limits, slot)."""
        t = seg.targets.get(L)
        text = ""
        if t is not None:
            text = t.shortened_from if t.shortened_from is not None and t.text == t.machine_text else t.text
        voice = self._voice_for(seg, script, L, tts_name)
        prof = self._voice_profiles().get(seg.speaker)
        prof_hash = hash_json(prof.model_dump()) if prof is not None else None
        policy = self._policy(seg, script, L)
        return hash_json(text, tts_name, voice, str(self.config.voice_dir), asdict(slot), self.config.max_stretch, MAX_BORROW_BEFORE_S,
                         prof_hash, self.config.voice_match, asdict(policy), self.config.translator)[:16]

    def _voice_for(self, seg: Segment, script: Script, L: str | None = None, tts_name: str | None = None) -> str | None:
        """The voice of a segment: its speaker's ``voice`` in script.json, else ``--voice``, else the
        base voice of the speaker's register (:func:`lipdub.voice.profiles.base_voice`)."""
        from .voice.profiles import base_voice

        spk = script.speaker(seg.speaker)
        explicit = (spk.voice if spk and spk.voice else None) or self.config.voice
        if explicit or L is None or tts_name is None:
            return explicit
        return base_voice(tts_name, parse_language(L), seg.speaker, self._voice_profiles())

    def _synthesize(self, lang: Language, tts_name: str, slots, keys: dict[int, str]):
        """Speak, voice-match and fit every line whose key changed, through the closed isochrony
        loop (:func:`lipdub.timing.isochrony.fit_line`): faster TTS, re-translation, time-stretch."""
        from .timing.isochrony import fit_line
        from .voice.match import NotMatchable, match_voice

        L = lang.code
        script = self._script()
        src_lang = parse_language(script.source_language)
        profiles = self._voice_profiles()
        tts = translator = None
        tts_dir = self.project.path(f"tts/{L}/.keep").parent
        wanted: set[str] = set()
        made, reused, retranslated = [], [], []
        clones: dict[str, str] = {}
        total = len(script.segments)
        for i, seg in enumerate(script.segments):
            key = keys[seg.id]
            stem = f"seg_{seg.id:04d}_{key}"
            wav, meta = tts_dir / f"{stem}.wav", tts_dir / f"{stem}.json"
            wanted |= {wav.name, meta.name}
            target = seg.targets.get(L)
            if target is None or not target.text.strip():
                continue
            if wav.exists() and meta.exists():
                fit = FitReport.model_validate_json(meta.read_text())
                reused.append(seg.id)
                if fit.history and fit.history[-1].text != target.text and target.text == target.machine_text:
                    # a run killed after this line's fit was written but before script.json: take the loop's shorter text
                    target.shortened_from = target.shortened_from or target.text
                    target.text = target.machine_text = fit.history[-1].text
            else:
                tts = tts or self._tts(tts_name)
                if translator is None:
                    translator = TRANSLATORS.create(self.config.translator)
                voice = self._voice_for(seg, script, L, tts_name)
                prof = profiles.get(seg.speaker)
                cloning = bool(getattr(tts, "clones", False))
                if cloning and voice is None and prof is not None:
                    if seg.speaker not in clones:
                        clones[seg.speaker] = tts.clone(prof.name, self.project.root / "voices" / prof.reference_path)
                    voice = clones[seg.speaker]
                matcher = prof if (self.config.voice_match and prof is not None and not cloning) else None

                def speak(text: str, rate: float, voice=voice, matcher=matcher):
                    speech: Speech = tts.synthesize(text, lang, voice=voice, rate=rate)
                    if matcher is None:
                        return speech, None
                    try:
                        samples, settings = match_voice(speech.samples, speech.sample_rate_hz, matcher)
                    except NotMatchable as exc:  # a one-word line: kept as synthesized, and said so
                        return speech, {"skipped": str(exc)}
                    return Speech(samples, speech.sample_rate_hz, speech.phonemes, speech.voice), settings.as_dict()

                policy = self._policy(seg, script, L)
                line = fit_line(target.text, slots[seg.id], policy, speak, self._shortener(translator, seg, src_lang, lang),
                                MIX_RATE_HZ, max_backend_rate=float(getattr(tts, "max_rate", 2.0)))
                fitted = line.fitted
                write_audio(wav, fitted.samples, MIX_RATE_HZ)
                fit = fitted.report(tts_name, slots[seg.id], attempts=len(line.history), audio_path=self.project.rel(wav))
                fit.tts_rate, fit.max_stretch, fit.on_screen = round(line.tts_rate, 4), policy.max_speedup, policy.on_screen
                fit.voice_match, fit.history = line.match, line.history
                if fit.voice is None:
                    fit.voice = voice
                if line.text != target.text:
                    target.shortened_from = target.shortened_from or target.text
                    target.text = target.machine_text = line.text
                    retranslated.append(seg.id)
                self.project.write_json(self.project.rel(meta), fit)  # atomic: a killed run never leaves half a record
                if fitted.phonemes:
                    self.project.write_json(f"tts/{L}/{stem}.phonemes.json", [asdict(p) for p in fitted.phonemes])
                    wanted.add(f"{stem}.phonemes.json")
                made.append(seg.id)
            if fit.audio_path and (tts_dir / Path(fit.audio_path).name.replace(".wav", ".phonemes.json")).exists():
                wanted.add(Path(fit.audio_path).name.replace(".wav", ".phonemes.json"))
            target.fit = fit
            self.hooks.stage_progress(f"synthesize:{L}", i + 1, total)
        for f in tts_dir.iterdir():  # lines whose text or slot changed leave stale files
            if f.is_file() and f.name not in wanted and f.name != ".keep":
                f.unlink()
        self.project.save_script(script)
        arts = sorted(f"tts/{L}/{n}" for n in wanted if (tts_dir / n).exists())
        fits = [s.targets[L].fit for s in script.segments if L in s.targets and s.targets[L].fit]
        speedups = [f.tts_rate * f.stretch_ratio for f in fits]
        details = {
            "synthesized": made, "reused": reused, "retranslated": retranslated,
            "max_stretch_ratio": max((f.stretch_ratio for f in fits), default=1.0),
            "max_speedup": round(max(speedups, default=1.0), 4),
            "over_limit_segments": [s.id for s in script.segments if L in s.targets and s.targets[L].fit
                                    and s.targets[L].fit.max_stretch is not None
                                    and s.targets[L].fit.tts_rate * s.targets[L].fit.stretch_ratio > s.targets[L].fit.max_stretch + 1e-3],
            "overrun_segments": [s.id for s in script.segments if L in s.targets and s.targets[L].fit and s.targets[L].fit.overrun_s > 0.01],
            "voice_matched": self.config.voice_match and bool(profiles),
        }
        return arts or ["script.json"], details, tts_name

    def _mix(self, lang: Language):
        L = lang.code
        p = self.project
        script = self._script()
        original, sr = read_audio(p.root / "audio/mix_48k.wav")
        me = dialogue = None
        if (p.root / "audio/me_48k.wav").exists() and self.project.manifest.stages["separate"].backend != "none":
            me, _ = read_audio(p.root / "audio/me_48k.wav")
            dialogue, _ = read_audio(p.root / "audio/dialogue_48k.wav")
        lines, spans = [], []
        for seg in script.segments:
            t = seg.targets.get(L)
            spans.append((seg.start_s, seg.end_s))
            if t is None or t.fit is None or not t.fit.audio_path:
                continue
            samples, _ = read_audio(p.root / t.fit.audio_path, mono=True)
            lines.append(mix_stage.PlacedLine(t.fit.placed_start_s, samples))
            spans.append((t.fit.placed_start_s, t.fit.placed_end_s))
        res = mix_stage.mix(lines, original=original, music_effects=me, source_dialogue=dialogue, sample_rate_hz=sr,
                            duck_spans_s=spans, target_lufs=self.config.target_lufs, true_peak_ceiling_dbtp=self.config.true_peak_dbtp)
        arts = []
        for name, data in (("dialogue", res.dialogue), ("me", res.music_effects), ("mix", res.mix)):
            write_audio(p.path(f"stems/{L}/{name}.wav"), data, sr)
            arts.append(f"stems/{L}/{name}.wav")
        details = {**asdict(res.loudness), **res.details, "lines": len(lines)}
        return arts, details, "pyloudnorm"

    def _render(self, lang, src_lang, info, out_media: Path, subs, stems, tgt_cues, src_cues, lipsync_video: Path | None = None,
                rotate_tag_deg: int = 0):
        import soundfile as sf

        L = lang.code
        p = self.project
        write_srt(tgt_cues, subs["target_srt"])
        write_vtt(tgt_cues, subs["target_vtt"])
        write_srt(src_cues, subs["source_srt"])
        write_vtt(src_cues, subs["source_vtt"])
        for name, path in stems.items():
            data, sr = read_audio(p.root / f"stems/{L}/{name}.wav")
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), data, sr, subtype="PCM_24")
        mix_wav = p.root / f"stems/{L}/mix.wav"
        if info.has_video:
            tracks = [render_stage.SubtitleTrack(subs["target_srt"], lang, f"{lang.name}"),
                      render_stage.SubtitleTrack(subs["source_srt"], src_lang, f"{src_lang.name} (original)")]
            render_stage.render_video(source=Path(info.path), mix_wav=mix_wav, output=out_media, language=lang,
                                      source_language=src_lang, subtitles=tracks, keep_original_audio=self.config.keep_original_audio,
                                      video_override=lipsync_video, video_codec="h264" if lipsync_video else info.video.codec,
                                      rotation_deg=rotate_tag_deg)
        else:
            data, sr = read_audio(mix_wav)
            render_stage.render_audio(mix=data, sample_rate_hz=sr, output=out_media, language=lang)
        arts = [out_media, *subs.values(), *stems.values()]
        video = ("lip-synced (H.264)" if lipsync_video else "copied") if info.has_video else None
        return arts, {"output": str(out_media), "video": video}, "ffmpeg"


# -- helpers (pure, tested directly) ---------------------------------------------------------

def compute_slots(segments: list[Segment], duration_s: float):
    """Slot of each segment with the free time it may borrow, keyed by segment id.

    The silence between two consecutive lines is shared so that no two fitted lines can overlap
    whatever each one borrows: the later line may start up to ``min(MAX_BORROW_BEFORE_S, gap/2)``
    early, the earlier one may run on into the rest, and ``MIN_GAP_S`` always stays silent.
    """
    from .timing.fit import Slot

    order = sorted(segments, key=lambda s: (s.start_s, s.id))
    slots = {}
    for i, seg in enumerate(order):
        prev_end = order[i - 1].end_s if i > 0 else 0.0
        gap_before = max(0.0, seg.start_s - prev_end)
        before = min(MAX_BORROW_BEFORE_S, max(0.0, gap_before / 2 - MIN_GAP_S / 2)) if i > 0 else min(MAX_BORROW_BEFORE_S, gap_before)
        if i + 1 < len(order):
            nxt = order[i + 1]
            gap_after = max(0.0, nxt.start_s - seg.end_s)
            next_before = min(MAX_BORROW_BEFORE_S, max(0.0, gap_after / 2 - MIN_GAP_S / 2))
            after = max(0.0, gap_after - next_before - MIN_GAP_S)
        else:
            after = max(0.0, duration_s - seg.end_s - 0.05)
        slots[seg.id] = Slot(start_s=seg.start_s, end_s=seg.end_s, free_before_s=round(before, 4), free_after_s=round(after, 4))
    return slots


def target_cues(script: Script, L: str) -> list[Cue]:
    """Subtitle cues of the dub: the target text over the time its speech is actually placed."""
    cues = []
    for s in script.segments:
        t = s.targets.get(L)
        if t is None:
            continue
        if t.fit is not None:
            cues.append(Cue(t.fit.placed_start_s, max(t.fit.placed_end_s, t.fit.placed_start_s + 0.5), t.text))
        else:
            cues.append(Cue(s.start_s, s.end_s, t.text))
    return cues


def video_frame_times(path: Path) -> np.ndarray:
    """Presentation time (seconds from the stream start) of every frame, float64 ``(n_frames,)``,
    from the demuxed packets' pts (no decoding; exact for variable frame rate)."""
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        pts = sorted(p.pts for p in c.demux(v) if p.size and p.pts is not None)
        start = v.start_time or 0
        return np.array([(p - start) * v.time_base for p in pts], dtype=np.float64)


def _apply_speaker_tracks(script: Script, speakers_json: dict) -> None:
    by_id = {m["speaker"]: m for m in speakers_json.get("speakers", [])}
    for spk in script.speakers:
        m = by_id.get(spk.id)
        if m is not None:
            spk.track, spk.track_confidence = m["track"], m["confidence"]


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:16]


def _needs_translation(seg: Segment, L: str, translator: str) -> bool:
    t = seg.targets.get(L)
    if t is None:
        return True
    if t.source_hash != _text_hash(seg.source_text):
        return True  # the source line was edited: translate again
    return t.translator != translator and not t.edited


def build_script(transcript: Transcript, turns: list[SpeakerTurn]) -> Script:
    """Merge ASR segments and speaker turns into script segments.

    Each word takes the speaker whose turn overlaps it most (the nearest turn when none overlaps); a
    segment is split where the speaker changes between words. Segments without words (imported
    subtitles) take the speaker with the largest overlap. With no turns, everyone is ``SPEAKER_00``.
    """
    def speaker_at(a: float, b: float) -> str:
        if not turns:
            return "SPEAKER_00"
        best, best_ov = None, 0.0
        for t in turns:
            ov = min(b, t.end_s) - max(a, t.start_s)
            if ov > best_ov:
                best, best_ov = t.speaker, ov
        if best is not None:
            return best
        mid = (a + b) / 2
        return min(turns, key=lambda t: min(abs(mid - t.start_s), abs(mid - t.end_s))).speaker

    segments: list[Segment] = []
    for ts in transcript.segments:
        text = ts.text.strip()
        if not text:
            continue
        if not ts.words:
            segments.append(Segment(id=len(segments), start_s=round(ts.start_s, 3), end_s=round(ts.end_s, 3),
                                    speaker=speaker_at(ts.start_s, ts.end_s), source_text=text))
            continue
        groups: list[tuple[str, list[TranscriptWord]]] = []
        for w in ts.words:
            spk = speaker_at(w.start_s, w.end_s)
            if groups and groups[-1][0] == spk:
                groups[-1][1].append(w)
            else:
                groups.append((spk, [w]))
        merged: list[tuple[str, list[TranscriptWord]]] = []
        for spk, words in groups:
            # a one-word speaker change inside a sentence is most likely a diarization blip
            if merged and (len(words) == 1 or merged[-1][0] == spk):
                merged[-1][1].extend(words)
            else:
                merged.append((spk, list(words)))
        if len(merged) > 1 and len(merged[0][1]) == 1:
            merged[1] = (merged[1][0], merged[0][1] + merged[1][1])
            merged.pop(0)
        for spk, words in merged:
            seg_text = "".join(w.text for w in words).strip() if len(merged) > 1 else text
            segments.append(Segment(
                id=len(segments), start_s=round(words[0].start_s, 3), end_s=round(words[-1].end_s, 3), speaker=spk,
                source_text=seg_text, words=[Word(start_s=w.start_s, end_s=w.end_s, text=w.text, probability=w.probability) for w in words],
            ))
    ids = sorted({s.speaker for s in segments})
    speakers = [Speaker(id=i, name=i, speech_s=round(sum(s.duration_s for s in segments if s.speaker == i), 3)) for i in ids]
    return Script(source_language=transcript.language, language_probability=transcript.language_probability,
                  speakers=speakers, segments=segments)


def dub(config: DubConfig, hooks: PipelineHooks | None = None) -> DubResult:
    """Dub ``config.input`` into each of ``config.targets``; see :class:`DubConfig`.

    Raises:
        LipdubError (InputError, ConfigError, BackendUnavailable, MissingWeights, StageFailed):
            with a message and a hint; everything computed so far stays in the project directory.
    """
    return Dubber(config, hooks).run()
