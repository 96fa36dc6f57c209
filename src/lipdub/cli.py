"""Command line (typer): a thin shell over :mod:`lipdub.pipeline`.

    lipdub dub INPUT --to es[,ca,...] -o OUT     dub a video or audio file
    lipdub transcribe INPUT -o source.srt        ingest, separate, VAD, diarize, transcribe
    lipdub translate PROJECT --to es -o es.srt   translate a project's script
    lipdub synthesize PROJECT --to es -o dub.wav synthesize, fit and mix a project's lines
    lipdub doctor                                which backends are usable here, and why not
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .cli_support import RichHooks, console
from .cli_support import key_values as _key_values
from .cli_support import main as run_main
from .cli_support import not_the_input as _not_the_input
from .cli_support import progress as _progress
from .cli_support import run_guarded as _run
from .cli_support import state as _state

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Dub a video into another language with lip sync, offline on CPU.")


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log stage details."),
) -> None:
    _state["debug"] = debug
    import warnings

    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")  # webrtcvad, via resemblyzer
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not (verbose or debug):  # PySceneDetect sets its logger to INFO when imported: keep its chatter out of stderr
        for handler in logging.getLogger().handlers:
            handler.addFilter(lambda r: r.name != "pyscenedetect" or r.levelno >= logging.WARNING)


def _config(**kw):
    from .config import DubConfig

    return DubConfig(**kw)


@app.command()
def dub(
    input: Path = typer.Argument(..., help="Source video or audio file."),
    to: str = typer.Option(..., "--to", help="Target language(s), ISO 639-1, comma separated: es or es,ca."),
    output: Path = typer.Option(..., "-o", "--output", help="Output file (.mp4/.mkv/.mov, .wav/.flac/.m4a for audio) or directory."),
    source_language: Optional[str] = typer.Option(None, "--from", help="Source language; detected when omitted."),
    transcript: Optional[Path] = typer.Option(None, "--transcript", help="Import this SRT/VTT instead of running ASR."),
    translator: str = typer.Option("auto", "--translator", help="auto (ctranslate2 where a model covers the pair, else apertium) | apertium | ctranslate2 | llm"),
    mt_model: Optional[Path] = typer.Option(None, "--mt-model", help="ctranslate2: a CTranslate2 model directory (NLLB, M2M-100, OPUS-MT) or .argosmodel file."),
    glossary: Optional[Path] = typer.Option(None, "--glossary", help="CSV of terms: source,target or source,keep (optional language column)."),
    translator_option: Optional[list[str]] = typer.Option(None, "--translator-option", help="KEY=VALUE option of the translator, repeatable (e.g. num_hypotheses=8)."),
    tts: str = typer.Option("auto", "--tts", help="auto | piper | espeak-ng | kokoro | xtts | elevenlabs | openai-speech"),
    voice: Optional[str] = typer.Option(None, "--voice", help="TTS voice for every speaker (per speaker: 'voice' in script.json)."),
    voice_dir: Optional[Path] = typer.Option(None, "--voice-dir", help="Directory of piper voices (*.onnx + *.onnx.json)."),
    separation: str = typer.Option("dfn", "--separation", help="dfn | none"),
    lipsync: str = typer.Option("retrieval", "--lipsync", help="retrieval | wav2lip | wav2lip_gan | external | none (keeps the source frames)"),
    lipsync_checkpoint: Optional[Path] = typer.Option(None, "--lipsync-checkpoint", help="wav2lip/wav2lip_gan: the .pth file (default: $LIPDUB_MODEL_DIR/<name>.pth)."),
    lipsync_device: Optional[str] = typer.Option(None, "--lipsync-device", help="wav2lip/wav2lip_gan: auto | cpu | cuda[:N] | mps."),
    lipsync_command: Optional[str] = typer.Option(None, "--lipsync-command", help="external: command template with {video} {audio} {output}."),
    video_preset: str = typer.Option("superfast", "--video-preset", help="x264 preset of the lip-synced video (README, Benchmarks)."),
    video_crf: int = typer.Option(16, "--video-crf", help="x264 CRF of the lip-synced video."),
    speakers: Optional[int] = typer.Option(None, "--speakers", help="Number of speakers; estimated when omitted."),
    project: Optional[Path] = typer.Option(None, "--project", help="Project directory (default: OUTPUT_DIR/<input stem>.lipdub)."),
    asr_model: Optional[str] = typer.Option(None, "--asr-model", help="Whisper model name or CTranslate2 directory (default base); not with --transcript."),
    max_stretch: float = typer.Option(1.25, "--max-stretch", help="Largest time-stretch ratio of a line."),
    loudness_standard: Optional[str] = typer.Option(None, "--loudness-standard", help="ebu-r128 (-23 LUFS, -1 dBTP) | atsc-a85 (-24 LKFS, -2 dBTP, the default) | streaming (-14 LUFS, -1 dBTP)."),
    loudness: Optional[float] = typer.Option(None, "--loudness", help="Integrated loudness target, LUFS (default: the standard's)."),
    true_peak: Optional[float] = typer.Option(None, "--true-peak", help="True-peak ceiling, dBTP (default: the standard's)."),
    deliver: str = typer.Option("web", "--deliver", help="web (H.264/HEVC MP4) | broadcast (ProRes 422 HQ MOV, 24-bit PCM stems, timecode, TTML)."),
    timecode: Optional[str] = typer.Option(None, "--timecode", help="broadcast: start timecode HH:MM:SS:FF (';' for drop-frame); default: the source's."),
    keep_original_audio: bool = typer.Option(False, "--keep-original-audio", help="Add the source soundtrack as a second audio track."),
    voice_bank: Optional[Path] = typer.Option(None, "--voice-bank", help="Voice bank directory: characters keep their voice across episodes."),
    voice_match: Optional[bool] = typer.Option(None, "--voice-match/--no-voice-match", help="Shift each line's pitch and formants toward its speaker (default: the TTS's choice: espeak-ng and piper on, kokoro off)."),
    voice_search: Optional[int] = typer.Option(None, "--voice-search", help="Syntheses per speaker of the kokoro voice search after its nearest measured blend (0: none; default: lipdub.config.DEFAULT_VOICE_SEARCH)."),
    check_intelligibility: Optional[bool] = typer.Option(None, "--check-intelligibility/--no-check-intelligibility", help="Hear every line back with the --asr-model and re-synthesize misheard ones (default: when the model knows the target language)."),
    max_attempts: int = typer.Option(3, "--max-attempts", help="Syntheses / re-translations per line to make it fit its slot and be understood."),
    redo_failed: bool = typer.Option(False, "--redo-failed", help="Re-fit the lines the last quality report did not pass (larger speed-up limit, more attempts)."),
) -> None:
    """Dub INPUT into the --to language(s)."""
    from .languages import parse_language_list
    from .pipeline import dub as run_dub

    def go():
        if asr_model is not None and transcript is not None:
            from .errors import ConfigError

            raise ConfigError(f"--asr-model {asr_model} names a speech recognizer, but with --transcript none runs",
                              "drop --asr-model, or drop --transcript to recognize the speech")
        cfg = _config(input=input, targets=[l.code for l in parse_language_list(to)], output=output, project_dir=project,
                      source_language=source_language, transcript=transcript, translator=translator, mt_model=mt_model, glossary=glossary,
                      translator_options=_key_values(translator_option, "--translator-option"), tts=tts, voice=voice,
                      voice_dir=voice_dir, separation=separation, lipsync=lipsync, lipsync_checkpoint=lipsync_checkpoint,
                      lipsync_device=lipsync_device, lipsync_command=lipsync_command, video_preset=video_preset, video_crf=video_crf,
                      speakers=speakers, asr_model=asr_model or "base",
                      max_stretch=max_stretch, loudness_standard=loudness_standard, target_lufs=loudness, true_peak_dbtp=true_peak,
                      deliver=deliver, timecode=timecode, keep_original_audio=keep_original_audio,
                      voice_bank=voice_bank, voice_match=voice_match,
                      **({} if voice_search is None else {"voice_search": voice_search}), check_intelligibility=check_intelligibility,
                      max_attempts=max_attempts, redo_failed=redo_failed)
        with _progress() as progress:
            result = run_dub(cfg, RichHooks(progress))
        _summary(result)

    _run(go)


def _summary(result) -> None:
    out = Console()
    table = Table(title=f"lipdub: project {result.project_dir}")
    table.add_column("stage")
    table.add_column("backend")
    table.add_column("time s", justify="right")
    table.add_column("RTF", justify="right")
    table.add_column("this run")
    for name, rec in result.stages.items():
        rtf = f"{rec.rtf:.3f}" if rec.rtf is not None else ""
        table.add_row(name, rec.backend or "", f"{rec.duration_s:.2f}", rtf, "ran" if name in result.ran else "reused")
    out.print(table)
    for lang, o in result.outputs.items():
        out.print(f"[bold]{lang}[/bold]: {o.media}")
        for k, p in o.subtitles.items():
            out.print(f"   {k}: {p}")
        if o.stems:
            out.print(f"   stems: {next(iter(o.stems.values())).parent}")
        report = result.stages.get(f"report:{lang}")
        if report is not None and report.details.get("verdict"):
            verdict = report.details["verdict"]
            colour = {"pass": "green", "warn": "yellow", "fail": "red"}.get(verdict, "white")
            out.print(f"   report: {report.details.get('report', '')}  verdict [{colour}]{verdict.upper()}[/]")
            for reason in report.details.get("reasons", [])[:5]:
                out.print(f"      {reason}")


@app.command()
def transcribe(
    input: Path = typer.Argument(..., help="Source video or audio file."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the source subtitles here (.srt or .vtt)."),
    project: Optional[Path] = typer.Option(None, "--project", help="Project directory (default: <input stem>.lipdub beside the output)."),
    source_language: Optional[str] = typer.Option(None, "--from", help="Source language; detected when omitted."),
    asr_model: str = typer.Option("base", "--asr-model"),
    separation: str = typer.Option("dfn", "--separation"),
    speakers: Optional[int] = typer.Option(None, "--speakers"),
) -> None:
    """Run ingest, separation, VAD, diarization and ASR; write the project's script.json (and subtitles)."""
    from .layout import project_dir_beside
    from .pipeline import Dubber
    from .subtitles import Cue, write_srt, write_vtt

    def go():
        _not_the_input(output, input)
        out_dir = (output.parent if output else Path.cwd())
        cfg = _config(input=input, targets=[], output=out_dir, project_dir=project or project_dir_beside(input, out_dir),
                      source_language=source_language, asr_model=asr_model, separation=separation, speakers=speakers)
        with _progress() as progress:
            dubber = Dubber(cfg, RichHooks(progress))
            dubber.run(until="script")
        script = dubber.project.load_script()
        cues = [Cue(s.start_s, s.end_s, f"[{s.speaker}] {s.source_text}") for s in script.segments]
        if output:
            (write_vtt if output.suffix.lower() == ".vtt" else write_srt)(cues, output)
        out = Console()
        for s in script.segments:
            out.print(f"{s.start_s:7.2f} {s.end_s:7.2f} {s.speaker}: {s.source_text}", highlight=False)
        out.print(f"script: {dubber.project.script_path}")

    _run(go)


def _project_config(project: Path, **overrides):
    from .errors import InputError
    from .project import Project

    if not (project / "manifest.json").is_file():  # nothing is made in a directory that is not a project
        raise InputError(f"{project} is not a lipdub project (no manifest.json)", "run lipdub transcribe or lipdub dub first")
    manifest = Project(project).manifest
    if not manifest.config:
        raise InputError(f"{project} is not a lipdub project (no manifest config)", "run lipdub transcribe or lipdub dub first")
    cfg = dict(manifest.config)
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    cfg["project_dir"] = project
    return _config(**cfg)


@app.command()
def translate(
    project: Path = typer.Argument(..., help="Project directory made by lipdub transcribe or dub."),
    to: str = typer.Option(..., "--to"),
    translator: Optional[str] = typer.Option(None, "--translator", help="auto | apertium | ctranslate2 | llm (default: the project's)."),
    mt_model: Optional[Path] = typer.Option(None, "--mt-model", help="ctranslate2: the model directory or .argosmodel file."),
    glossary: Optional[Path] = typer.Option(None, "--glossary", help="CSV of terms: source,target or source,keep."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the target subtitles here (.srt/.vtt)."),
) -> None:
    """Translate a project's script (edits to target lines are kept)."""
    from .languages import parse_language_list
    from .pipeline import Dubber
    from .subtitles import Cue, write_srt, write_vtt

    def go():
        langs = [l.code for l in parse_language_list(to)]
        cfg = _project_config(project, targets=langs, translator=translator, mt_model=mt_model, glossary=glossary)
        with _progress() as progress:
            dubber = Dubber(cfg, RichHooks(progress))
            dubber.run(until="translate")
        script = dubber.project.load_script()
        out = Console()
        for lang in langs:
            cues = [Cue(s.start_s, s.end_s, s.targets[lang].text) for s in script.segments if lang in s.targets]
            if output:
                path = output if len(langs) == 1 else output.with_name(f"{output.stem}.{lang}{output.suffix}")
                (write_vtt if path.suffix.lower() == ".vtt" else write_srt)(cues, path)
            for s in script.segments:
                if lang in s.targets:
                    out.print(f"{s.start_s:7.2f} [{lang}] {s.targets[lang].text}", highlight=False)

    _run(go)


@app.command()
def synthesize(
    project: Path = typer.Argument(..., help="Project directory with a translated script."),
    to: str = typer.Option(..., "--to"),
    tts: Optional[str] = typer.Option(None, "--tts"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Copy the dubbed mix here (.wav)."),
) -> None:
    """Synthesize and fit each line, then mix (only changed lines are re-synthesized)."""
    import shutil

    from .languages import parse_language_list
    from .pipeline import Dubber

    def go():
        langs = [l.code for l in parse_language_list(to)]
        cfg = _project_config(project, targets=langs, tts=tts)
        with _progress() as progress:
            dubber = Dubber(cfg, RichHooks(progress))
            result = dubber.run(until="mix")
        for lang in langs:
            mix_path = result.outputs[lang].stems["mix"]
            if output:
                dest = output if len(langs) == 1 else output.with_name(f"{output.stem}.{lang}{output.suffix}")
                shutil.copyfile(mix_path, dest)
                Console().print(f"{lang}: {dest}")
            else:
                Console().print(f"{lang}: {mix_path}")

    _run(go)


@app.command()
def faces(
    input: Path = typer.Argument(..., help="Source video."),
    output: Path = typer.Option(..., "-o", "--output", help="Overlay video to write (.mp4)."),
    project: Optional[Path] = typer.Option(None, "--project", help="Project directory (default: <input stem>.lipdub beside the output)."),
    speakers: Optional[int] = typer.Option(None, "--speakers", help="Number of speakers; estimated when omitted."),
) -> None:
    """Analyse the faces (shots, tracks, landmarks, pose, active speaker) and draw them on the video."""
    from .contracts.faces import FaceAnalysis
    from .errors import InputError
    from .faces.analyze import iter_frames
    from .faces.overlay import write_overlay
    from .faces.speakers import TurnMatch
    from .layout import ProjectLayout as L
    from .layout import project_dir_beside
    from .pipeline import Dubber

    def go():
        import numpy as np

        _not_the_input(output, input)
        cfg = _config(input=input, targets=[], output=output.parent, project_dir=project or project_dir_beside(input, output.parent),
                      speakers=speakers)
        with _progress() as progress:
            dubber = Dubber(cfg, RichHooks(progress))
            dubber.run(until="faces")
        root = dubber.project.root
        if not (root / L.FACES_JSON).exists():
            raise InputError(f"{input} has no video stream", "lipdub faces needs a video")
        analysis = FaceAnalysis.load(root / L.FACES_DIR)
        data = dubber.project.read_json(L.SPEAKERS)
        turns = [TurnMatch(**t) for t in data["turns"]]
        frame_times = np.load(root / L.FRAME_TIMES)
        write_overlay(iter_frames(input), analysis, turns, frame_times, output)
        out = Console()
        out.print(f"{len(analysis.shots)} shots, {len(analysis.tracks)} face tracks")
        for t in analysis.tracks:
            out.print(f"  track {t.id}: frames {t.start_frame}-{t.end_frame - 1} (shot {t.shot}), skipped {int((t.skip > 0).sum())}")
        for m in data["speakers"]:
            out.print(f"  {m['speaker']} -> track {m['track']} (confidence {m['confidence']:.2f})")
        out.print(f"overlay: {output}")

    _run(go)


@app.command()
def lipsync(
    video: Path = typer.Argument(..., help="Video with the face to re-animate."),
    audio: Path = typer.Argument(..., help="Speech to lip-sync to (any audio or video file)."),
    output: Path = typer.Option(..., "-o", "--output", help="Output video (.mp4)."),
    backend: str = typer.Option("retrieval", "--backend", help="retrieval | wav2lip | wav2lip_gan | external"),
    face: Optional[int] = typer.Option(None, "--face", help="Face track id (see lipdub faces); default: the face on screen longest."),
    lossless: bool = typer.Option(False, "--lossless", help="Lossless H.264 (qp 0)."),
    video_preset: str = typer.Option("superfast", "--video-preset", help="x264 preset (README, Benchmarks)."),
    video_crf: int = typer.Option(16, "--video-crf", help="x264 CRF."),
    asr_model: str = typer.Option("base", "--asr-model", help="retrieval: Whisper model that transcribes AUDIO and the video's soundtrack before their phonemes are aligned."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="wav2lip/wav2lip_gan: the .pth file (default: $LIPDUB_MODEL_DIR/<backend>.pth)."),
    device: Optional[str] = typer.Option(None, "--device", help="wav2lip/wav2lip_gan: auto | cpu | cuda[:N] | mps (default auto)."),
    pads: Optional[str] = typer.Option(None, "--pads", help="wav2lip/wav2lip_gan: face crop padding TOP,BOTTOM,LEFT,RIGHT in pixels (default 0,10,0,0)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="wav2lip/wav2lip_gan: faces per generator call (default 16)."),
    sharpen: Optional[float] = typer.Option(None, "--sharpen", help="wav2lip/wav2lip_gan: unsharp-mask amount for the generated mouth (0 = off)."),
    command: Optional[str] = typer.Option(None, "--command", help="external: command template with {video} {audio} {output} (default $LIPDUB_LIPSYNC_COMMAND)."),
) -> None:
    """Lip-sync any video to any speech (the face analysis and compositor of lipdub dub)."""
    from .lipsync.api import lipsync_video, parse_pads

    def go():
        with _progress() as progress:
            tasks: dict[str, int] = {}

            def report(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = progress.add_task(stage, total=total)
                progress.update(tasks[stage], completed=done, total=total)

            options = {"checkpoint": checkpoint, "device": device, "pads": parse_pads(pads) if pads is not None else None,
                       "batch_size": batch_size, "sharpen": sharpen, "command": command}
            result = lipsync_video(video, audio, output, backend=backend, backend_options=options, face=face, lossless=lossless,
                                   video_preset=_x264_preset(video_preset), video_crf=video_crf, asr_model=asr_model, progress=report)
        out = Console()
        out.print(f"face track {result.track}: {result.frames} frames re-animated")
        for k, v in result.details.items():
            if isinstance(v, (int, float, str)):
                out.print(f"  {k}: {v}")
        out.print(f"output: {result.output}")

    _run(go)


def _x264_preset(name: str) -> str:
    """``name`` when it is an x264 preset, else ConfigError."""
    from .errors import ConfigError
    from .media.render import X264_PRESETS

    if name not in X264_PRESETS:
        raise ConfigError(f"unknown x264 preset {name!r}", f"use one of {', '.join(X264_PRESETS)}")
    return name


@app.command()
def qc(
    output: Path = typer.Argument(..., help="A dubbed (or any) video."),
    source: Optional[Path] = typer.Option(None, "--source", help="The source video: reference, no-lip-sync floor, SSIM/PSNR/VMAF."),
    project: Optional[Path] = typer.Option(None, "--project", help="The dub's project directory: timing, voice, per-segment figures."),
    out_dir: Optional[Path] = typer.Option(None, "-o", "--output", help="Write report.json and report.html into this directory."),
    syncnet: Optional[Path] = typer.Option(None, "--syncnet", help="syncnet_v2.model: adds SyncNet LSE-D / LSE-C / AV offset."),
    thresholds: Optional[Path] = typer.Option(None, "--thresholds", help="TOML/JSON file overriding pass/warn thresholds."),
    language: Optional[str] = typer.Option(None, "--language", help="Language of the dub in the project (default: found in it)."),
    face: Optional[int] = typer.Option(None, "--face", help="Face track id; default: the face on screen longest."),
    no_vmaf: bool = typer.Option(False, "--no-vmaf", help="Skip VMAF (the slowest figure)."),
) -> None:
    """Quality report (DESIGN.md section 4): lip sync, visual fidelity, loudness, voice, timing, with a verdict."""
    from .qc.report import build_report, write_report
    from .qc.thresholds import Thresholds
    from .runtime import apply_thread_policy

    def go():
        from .languages import parse_language

        # as the pipeline does: the sync score's many small ridge solves spent most of their time in
        # OpenBLAS's thread hand-offs (40x40 solves 35 ms each instead of 0.02 ms on the loaded machine)
        apply_thread_policy()
        out = Console()
        th = Thresholds.load(thresholds)
        code = parse_language(language).code if language is not None else None  # an unknown code: one line, exit 2
        with out.status("measuring") as status:
            rep = build_report(output, source=source, project_dir=project, language=code, thresholds=th, syncnet=syncnet,
                               face=face, vmaf=not no_vmaf, progress=lambda msg: status.update(f"measuring: {msg}"))
        sync = rep.data.get("sync") or {}
        table = Table(title=f"lip sync: {output.name}")
        for col in ("", "AV offset (frames)", "peak correlation", "confidence", "frames"):
            table.add_column(col)
        for key, name in (("dub", "dub"), ("reference", "source reference"), ("floor", "floor (source video + dub audio)")):
            s = sync.get(key)
            if s is None:
                if key == "dub" or source is not None:
                    table.add_row(name, "no face", "", "", "")
            else:
                table.add_row(name, str(s["offset_frames"]), f"{s['peak_correlation']:.3f}", f"{s['confidence']:.3f}", str(s["n_frames"]))
        out.print(table)
        checks = Table(title="figures")
        for col in ("figure", "value", "unit", "verdict", "threshold"):
            checks.add_column(col)
        colour = {"pass": "green", "warn": "yellow", "fail": "red"}
        for c in rep.data["checks"]:
            v = "-" if c["value"] is None else f"{c['value']:.4g}"
            checks.add_row(c["label"], v, c["unit"], f"[{colour.get(c['verdict'], 'white')}]{c['verdict']}[/]", c["threshold"])
        out.print(checks)
        out.print(f"verdict: [{colour.get(rep.verdict, 'white')}]{rep.verdict.upper()}[/]")
        if out_dir is not None:
            j, h = write_report(rep, out_dir)
            out.print(f"report: {h} ({j.name} beside it)")

    _run(go)


@app.command()
def doctor() -> None:
    """List every backend, whether it is usable here, and why not."""
    from .doctor import collect

    table = Table(title="lipdub doctor")
    for col in ("stage", "backend", "usable", "detail"):
        table.add_column(col)
    for st in collect():
        table.add_row(st.stage, st.name, "[green]yes[/green]" if st.usable else "[red]no[/red]", st.detail)
    Console().print(table)


def _service_settings(data_dir: Optional[Path], **kw):
    """Service settings from LIPDUB_* variables, with the options given on the command line."""
    from .service.settings import ServiceSettings

    over = {k: v for k, v in kw.items() if v is not None}
    if data_dir is not None:
        over["data_dir"] = data_dir
    return ServiceSettings(**over)


@app.command()
def serve(
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Uploads, projects, outputs and the SQLite store (LIPDUB_DATA_DIR)."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    workers: Optional[int] = typer.Option(None, "--workers", help="Jobs run at once by the embedded pool (LIPDUB_EMBEDDED_WORKERS); not with LIPDUB_BROKER_URL."),
) -> None:
    """Run the studio service: REST API, web page and job queue (embedded, or Celery with LIPDUB_BROKER_URL)."""
    def go():
        import secrets

        import uvicorn

        from .service.app import create_app

        settings = _service_settings(data_dir, embedded_workers=workers)
        if workers is not None and settings.broker_url:
            from .errors import ConfigError

            raise ConfigError("--workers sets the embedded pool, but LIPDUB_BROKER_URL sends jobs to Celery", "start `lipdub worker` processes instead")
        from .service.keys import open_key_store

        if not settings.token_map() and not open_key_store(settings, create=True).has_active_keys():
            token = secrets.token_urlsafe(24)
            settings = settings.model_copy(update={"tokens": f"admin={token}"})
            console.print(f"no LIPDUB_TOKENS set: API token for user 'admin' (this run): {token}")
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info")

    _run(go)


@app.command()
def worker(
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="The data directory the API server uses (LIPDUB_DATA_DIR; shared storage)."),
    name: Optional[str] = typer.Option(None, "--name", help="Celery node name (default lipdub-PID@HOST)."),
) -> None:
    """Run one Celery worker (one job at a time; start one per GPU with CUDA_VISIBLE_DEVICES). Needs LIPDUB_BROKER_URL."""
    def go():
        from .service.worker import run_worker

        run_worker(_service_settings(data_dir), name=name)

    _run(go)


def main() -> None:  # console_scripts entry point
    """Run the CLI (:func:`lipdub.cli_support.main`: usage errors are one line, exit code 2)."""
    run_main(app)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


# -- lipdub keys: the studio service's API keys (stored hashed in its job store) -------------------
keys_app = typer.Typer(no_args_is_help=True, help="API keys of the studio service: add, list, revoke (stored hashed).")
app.add_typer(keys_app, name="keys")
_DATA_DIR_HELP = "The server's data directory (LIPDUB_DATA_DIR); LIPDUB_DATABASE_URL is honoured."


@keys_app.command("add")
def keys_add(
    user: str = typer.Argument(..., help="The user the key signs in as (created when new)."),
    label: str = typer.Option("", "--label", help="A note shown by `lipdub keys list` (who holds it, where)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help=_DATA_DIR_HELP),
) -> None:
    """Create an API key for USER; it is printed once (stdout) and stored only as its SHA-256 digest."""
    def go():
        from .service.keys import open_key_store

        secret, info = open_key_store(_service_settings(data_dir), create=True).add(user, label)
        console.print(f"key {info.id} for user {info.user!r} (shown once; it cannot be recovered):")
        typer.echo(secret)

    _run(go)


@keys_app.command("list")
def keys_list(data_dir: Optional[Path] = typer.Option(None, "--data-dir", help=_DATA_DIR_HELP)) -> None:
    """List every key (never the key itself): id, user, label, origin, created, last used, state."""
    def go():
        from .service.keys import open_key_store

        table = Table(title="lipdub studio keys")
        table.add_column("id", no_wrap=True, min_width=12)
        for col in ("user", "label", "origin", "created (UTC)", "last used (UTC)", "state"):
            table.add_column(col)
        fmt = lambda t: t.strftime("%Y-%m-%d %H:%M") if t else "never"  # noqa: E731
        for k in open_key_store(_service_settings(data_dir), create=False).keys():
            table.add_row(k.id, k.user, k.label, k.origin, fmt(k.created_at), fmt(k.last_used_at), k.state)
        Console().print(table)

    _run(go)


@keys_app.command("revoke")
def keys_revoke(
    key_ids: Optional[list[str]] = typer.Argument(None, help="Key ids (from `lipdub keys list`)."),
    user: Optional[str] = typer.Option(None, "--user", help="Revoke every key of this user."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help=_DATA_DIR_HELP),
) -> None:
    """Revoke keys for good: requests and web sessions made with them are refused from now on."""
    def go():
        from .errors import ConfigError
        from .service.keys import open_key_store

        if not key_ids and user is None:
            raise ConfigError("no key to revoke", "pass key ids (lipdub keys list) or --user NAME")
        store = open_key_store(_service_settings(data_dir), create=False)
        revoked = [store.revoke(k) for k in key_ids or []] + (store.revoke_user(user) if user is not None else [])
        for k in revoked:
            console.print(f"revoked key {k.id} of user {k.user!r}")
        if not revoked:
            console.print(f"user {user!r} had no active key")

    _run(go)
