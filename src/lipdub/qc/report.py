"""Stage 14, qc: the quality report of a dub (DESIGN.md section 4).

:func:`build_report` measures one output (a dubbed video) and judges every figure against
:class:`~lipdub.qc.thresholds.Thresholds`; :func:`write_report` writes ``report.json`` (every figure
with its unit, threshold and verdict) and ``report.html`` (verdict first, then the plots). What is
measured depends on what is known:

* the output alone: lip sync of the dub (landmark score; SyncNet LSE with ``syncnet``), audio
  loudness / true peak / LRA / clipping;
* with the source video: also the source reference and the no-lip-sync floor (source video + dub
  audio), and visual fidelity (SSIM / PSNR whole frame and outside the mouth, VMAF);
* with the project directory: also timing per segment (fit reports in ``script.json``), voice
  similarity per speaker, intelligibility (each line's hearing record, the dialogue stem heard by
  Whisper against the subtitles, :mod:`lipdub.qc.intelligibility_report`), per-segment sync, and the
  source face analysis is reused.

``lipdub dub`` runs it as the ``report:<lang>`` stage after ``render:<lang>``
(:mod:`lipdub.pipeline.stages.report`): the report goes to ``<project>/report/<lang>/`` and is copied
beside the output as ``NAME.report.json`` and ``NAME.report.html``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..audio import AudioFile, read_audio, read_resampled
from ..contracts.faces import FaceAnalysis
from ..errors import BackendUnavailable, InputError
from ..faces.analyze import analyze_video
from ..faces.shots import detect_shots
from ..layout import ProjectLayout as L
from ..lipsync.phonemes import dub_phonemes
from ..loudness_standards import loudness_compliance
from ..media.probe import decode_audio, decode_audio_to_wav, probe, video_frame_times
from ..script import Script
from .html import render_html
from .intelligibility_report import NO_LINES_NOTE, has_lines, intelligibility_section
from .loudness import audio_figures
from .model import REPORT_VERSION, Check, Report, json_safe, judge
from .sync_section import SyncInputs, sync_section
from .thresholds import Thresholds, worst
from .timing import timing_figures
from .visemes import viseme_check
from .visual import NotMeasurable, VisualRun, compare_videos
from .voice import speaker_similarity

log = logging.getLogger(__name__)


def _project_language(project_dir: Path, output: Path, language: str | None) -> str | None:
    if language:
        return language
    man = project_dir / L.MANIFEST
    if man.exists():
        stages = json.loads(man.read_text()).get("stages", {})
        for name, rec in stages.items():
            if name.startswith("render:") and Path(str(rec.get("details", {}).get("output", ""))).resolve() == output.resolve():
                return name.split(":", 1)[1]
        langs = [n.split(":", 1)[1] for n in stages if n.startswith("render:")]
        if len(langs) == 1:
            return langs[0]
    return None


def _audio_checks(aud, target: float, th: Thresholds) -> list[Check]:
    return [
        judge("audio", "loudness_error_lu", f"integrated loudness {aud.integrated_lufs:.1f} LUFS vs target {target:g}",
              abs(aud.integrated_lufs - target) if math.isfinite(aud.integrated_lufs) else None, th.loudness_error_lu),
        judge("audio", "true_peak_dbtp", "true peak", aud.true_peak_dbtp, th.true_peak_dbtp),
        judge("audio", "loudness_range_lu", "loudness range (LRA)", aud.loudness_range_lu, th.loudness_range_lu),
        judge("audio", "clipped_share", f"clipped samples ({aud.clipped_samples})", aud.clipped_share, th.clipped_share),
    ]


def _audio_section(mix48, target: float, standard: str | None, th: Thresholds) -> tuple[dict, list[Check]]:
    """Loudness, true peak, LRA and clipping of the output's 48 kHz soundtrack (an array or a block
    source, :func:`lipdub.qc.loudness.audio_figures`), judged; with a
    loudness standard also its compliance (:func:`lipdub.loudness_standards.loudness_compliance`)."""
    aud = audio_figures(mix48, 48000)
    audio = {**aud.as_dict(), "target_lufs": target, "units": {"integrated_lufs": "LUFS", "true_peak_dbtp": "dBTP", "loudness_range_lu": "LU"}}
    checks = _audio_checks(aud, target, th)
    if standard:
        audio["loudness_standard"] = comp = loudness_compliance(standard, aud.integrated_lufs, aud.true_peak_dbtp)
        checks.append(Check("audio", "loudness_standard", f"loudness and true peak against {comp['standard']}",
                            comp["deviation_lu"] if math.isfinite(comp["deviation_lu"]) else None, "LU",
                            "pass" if comp["compliant"] else "fail",
                            f"{comp['target_lufs']:g} LUFS +-{comp['tolerance_lu']:g} LU, true peak <= {comp['max_true_peak_dbtp']:g} dBTP",
                            comp["reference"]))
    return audio, checks


def _soundtrack(output: Path, info, target: float, standard: str | None, th: Thresholds) -> tuple[np.ndarray, dict, list[Check]]:
    """The output's 16 kHz soundtrack (float32 mono) and its audio section (:func:`_audio_section`);
    the 48 kHz soundtrack is decoded to a temporary WAV and measured from it a block at a time, never
    held whole (a 10-minute one is 230 MB as float32)."""
    with tempfile.TemporaryDirectory(prefix="lipdub_report_") as tmp:
        wav = Path(tmp) / "soundtrack.wav"
        out16 = decode_audio_to_wav(output, info, wav)
        with AudioFile(wav) as mix48:
            audio, checks = _audio_section(mix48, target, standard, th)
    return out16, audio, checks


def output_shots(output: Path, frame_count: int, src_analysis: FaceAnalysis | None) -> list:
    """The shots of the output: the source's when its analysis has the same frames (a dub keeps every
    frame, and the source's cuts include the jump cuts found on its faces), else detected on the output.
    Face tracks of the output then end at the cuts, as the source's do."""
    if src_analysis is not None and src_analysis.frame_count == frame_count:
        return list(src_analysis.shots)
    return detect_shots(output, frame_count)


def _sync_inputs(output: Path, out16: np.ndarray, source: Path | None, project: Path | None, L_code: str | None,
                 output_analysis, face: int | None, say, sync: dict, source_analysis=None) -> SyncInputs:
    """The faces and speech the sync figures need. Lip sync is measured against speech: the dub's
    dialogue stem when the project has it (music and effects under the speech only blur the mel
    features), else the output's soundtrack; the source's dialogue stem for the reference."""
    out_times = video_frame_times(output)
    inp = SyncInputs(output, output_analysis, out_times, out16, face=face)
    if source is not None:
        sp = probe(source)
        if project is not None and (project / L.DIALOGUE_48K).exists():
            inp.src16 = read_resampled(project / L.DIALOGUE_48K, 16000)  # the source's speech without its music and effects
        else:
            _, inp.src16 = decode_audio(source, sp)
        if source_analysis is not None and project is not None and (project / L.FRAME_TIMES).exists():
            inp.src_analysis, inp.src_times = source_analysis, np.load(project / L.FRAME_TIMES)
        elif project is not None and (project / L.FACES_JSON).exists():
            inp.src_analysis = FaceAnalysis.load(project / L.FACES_DIR)
            inp.src_times = np.load(project / L.FRAME_TIMES)
        elif sp.has_video:
            say("faces of the source")
            inp.src_analysis = analyze_video(source, detect_shots(source, len(video_frame_times(source))))
            inp.src_times = video_frame_times(source)
    if inp.out_analysis is None:
        say("faces of the output")
        inp.out_analysis = analyze_video(output, output_shots(output, len(out_times), inp.src_analysis))
    sync["audio"] = "output soundtrack"
    if project is not None and L_code and (project / L.stem(L_code, "dialogue")).exists():
        inp.speech16 = read_resampled(project / L.stem(L_code, "dialogue"), 16000)
        sync["audio"] = f"stems/{L_code}/dialogue.wav (and the source's dialogue stem for the reference)"
    return inp


def _speaker_of_track(track, src_analysis, script: Script) -> str | None:
    """The script speaker shown by output ``track``: the only speaker with a face, else the one whose
    source track overlaps it most (mean box IoU > 0.3 on their common frames)."""
    speakers = [s for s in script.speakers if s.track is not None]
    if len(speakers) == 1:
        return speakers[0].id
    best, best_iou = None, 0.3
    for spk in speakers if src_analysis is not None else []:
        st = next((t for t in src_analysis.tracks if t.id == spk.track), None)
        common = np.intersect1d(track.frames, st.frames) if st is not None else []
        if len(common) == 0:
            continue
        a = np.array([track.boxes[track.index_of(f)] for f in common], float)
        b = np.array([st.boxes[st.index_of(f)] for f in common], float)
        inter = np.clip(np.minimum(a[:, 2:], b[:, 2:]) - np.maximum(a[:, :2], b[:, :2]), 0, None).prod(1)
        union = (a[:, 2:] - a[:, :2]).prod(1) + (b[:, 2:] - b[:, :2]).prod(1) - inter
        iou = float(np.mean(inter / np.maximum(union, 1e-9)))
        if iou > best_iou:
            best, best_iou = spk.id, iou
    return best


def _viseme_section(project: Path, script: Script, L_code: str, track, inp: SyncInputs, th: Thresholds) -> tuple[dict, list[Check]]:
    """The viseme check (:func:`lipdub.qc.visemes.viseme_check`): at the dub's bilabials the output
    lips closed, at its open vowels the mouth open, per line of the speaker the scored track shows."""
    speaker = _speaker_of_track(track, inp.src_analysis, script)
    if speaker is None:
        return {"note": "the scored face is no speaker's track"}, []
    phonemes = dub_phonemes(project, script, L_code, speaker, align=False)
    if not phonemes:
        return {"note": "the dub's TTS gave no phoneme timings"}, []
    lines = [(t.fit.placed_start_s, t.fit.placed_end_s, t.text) for s in script.segments
             if s.speaker == speaker and (t := s.targets.get(L_code)) is not None and t.fit is not None]
    vc = viseme_check(track, inp.out_times, phonemes, lines, audio=inp.speech16, sample_rate_hz=16000)
    checks = [judge("visemes", "viseme_bilabial_closed", f"lips closed at p/b/m ({vc.n_bilabial})", vc.bilabial_closed_share,
                    th.viseme_bilabial_closed),
              judge("visemes", "viseme_open_vowel_open", f"mouth open at open vowels ({vc.n_open_vowel})", vc.open_vowel_open_share,
                    th.viseme_open_vowel_open)]
    return {**vc.as_dict(), "speaker": speaker}, [c for c, n in zip(checks, (vc.n_bilabial, vc.n_open_vowel)) if n]


def _syncnet_section(syncnet, output: Path, inp: SyncInputs, out16, track, th: Thresholds, data: dict, say) -> list[Check]:
    if syncnet is None:
        data["syncnet"] = {"note": "not computed: pass --syncnet PATH to syncnet_v2.model"}
        return []
    from .syncnet import load_syncnet, video_syncnet_score  # torch: only when SyncNet is asked for

    model = load_syncnet(syncnet)
    say("SyncNet")
    lse = video_syncnet_score(model, output, inp.out_analysis, inp.out_times, out16, track_id=track.id if track else None)
    data["syncnet"] = lse.as_dict() if lse else {"note": "no face"}
    if lse is None:
        return []
    return [judge("syncnet", "lse_d", "SyncNet LSE-D", lse.lse_d, th.lse_d),
            judge("syncnet", "lse_c", "SyncNet LSE-C", lse.lse_c, th.lse_c),
            judge("syncnet", "syncnet_offset_frames", f"SyncNet AV offset {lse.offset_frames:+d} frames (25 fps)",
                  abs(lse.offset_frames), th.syncnet_offset_frames)]


def _visual_section(source: Path | None, output: Path, inp: SyncInputs, vmaf, max_frames: int, th: Thresholds,
                    data: dict, say) -> list[Check]:
    if source is None or inp.src_analysis is None:
        if isinstance(vmaf, VisualRun):
            vmaf.cancel()
        data["visual"] = {"note": "not computed: pass --source (the source video)"}
        return []
    say("visual fidelity")
    try:
        if isinstance(vmaf, VisualRun):  # started by the caller, beside the rest of the report
            vis = vmaf.result()
        else:
            vis = compare_videos(source, output, analysis=inp.src_analysis, max_frames=max_frames, vmaf=bool(vmaf))
    except NotMeasurable as exc:  # a 1x1 or 4098x2 video: no SSIM, said in the report
        data["visual"] = {"note": f"not computed: {exc.message}"}
        return []
    data["visual"] = vis.as_dict()
    checks = [judge("visual", "ssim", "SSIM, whole frame", vis.ssim, th.ssim),
              judge("visual", "ssim_outside_mouth", "SSIM outside the mouth", vis.ssim_outside_mouth, th.ssim_outside_mouth),
              judge("visual", "psnr_outside_mouth_db", "PSNR outside the mouth",
                    vis.psnr_outside_mouth_db if vis.psnr_outside_mouth_db is not None else math.inf, th.psnr_outside_mouth_db,
                    "identical outside the mouth" if vis.psnr_outside_mouth_db is None else "")]
    if vis.vmaf is not None:
        checks.append(judge("visual", "vmaf", "VMAF", vis.vmaf, th.vmaf))
    return checks


def _timing_checks(script: Script, L_code: str, duration_s: float, th: Thresholds, data: dict) -> list[Check]:
    tim = timing_figures(script, L_code, duration_s, th)
    data["timing"] = tim.as_dict()
    checks = [judge("timing", "fit_share", "share of lines fitted: speed-up (TTS rate x stretch / natural speed) within the "
                    "line's limit, no overrun", tim.fit_share, th.fit_share),
              judge("timing", "overlap_s", "largest overlap of two lines", tim.max_overlap_s, th.overlap_s),
              judge("timing", "subtitle_outside_s", "subtitles outside the video", tim.subtitle_outside_s, th.subtitle_outside_s)]
    seg_v = worst(s.verdict for s in tim.segments)
    bad = [s.id for s in tim.segments if s.verdict == "fail"]
    warned = [s.id for s in tim.segments if s.verdict == "warn"]
    checks.append(Check("timing", "segments", f"lines not passing: {len(bad)} fail, {len(warned)} warn "
                        f"({len(tim.over_limit)} over their speed-up limit)", float(len(bad) + len(warned)), "segments", seg_v,
                        "each line: speed-up within its limit, overrun, overlap (the worst line's verdict)", "see the segment table"))
    return checks


def _conclude(data: dict, checks: list[Check], th: Thresholds, project: Path | None, L_code: str | None) -> None:
    """The verdict, its reasons, every check, the thresholds, and what changed since the last report."""
    data["verdict"] = worst(c.verdict for c in checks) if checks else "n/a"
    data["reasons"] = [f"{c.label}: {c.value:g} {c.unit} ({c.verdict}: {c.threshold})" if c.value is not None else f"{c.label}: {c.verdict}"
                       for c in checks if c.verdict in ("warn", "fail")]
    data["checks"] = [c.as_dict() for c in checks]
    data["thresholds"] = th.model_dump()
    if project is not None and L_code is not None:
        prev = project / L.report_json(L_code)
        if prev.exists():
            try:
                data["changes"] = compare_reports(json.loads(prev.read_text()), data)
            except (ValueError, KeyError):  # pragma: no cover - a hand-edited previous report
                pass


def _video_checks(output: Path, out16: np.ndarray, source: Path | None, project: Path | None, script: Script | None,
                  L_code: str | None, th: Thresholds, data: dict, say, *, face, syncnet, vmaf, visual_max_frames: int,
                  output_analysis, source_analysis) -> tuple[list[Check], list[tuple[int, float, bytes]]]:
    """The picture's groups of :func:`build_report` (lip sync, visemes, SyncNet, visual fidelity), filled
    into ``data``; returns their checks and the worst-sync thumbnails. A dub with no lines (nothing was
    dubbed) gets no lip-sync figures: its mouth would be judged against silence."""
    sync: dict[str, Any] = {}
    checks: list[Check] = []
    thumbs: list[tuple[int, float, bytes]] = []
    inp = _sync_inputs(output, out16, source, project, L_code, output_analysis, face, say, sync, source_analysis)
    data["sync"] = sync
    if script is not None and L_code is not None and not has_lines(script, L_code):
        sync["note"] = NO_LINES_NOTE
    else:
        say("lip sync")
        track, sync_checks, thumbs = sync_section(inp, sync, th, script, L_code)
        checks += sync_checks
        if script is not None and L_code is not None and track is not None:
            data["visemes"], viseme_checks = _viseme_section(project, script, L_code, track, inp, th)
            checks += viseme_checks
        checks += _syncnet_section(syncnet, output, inp, out16, track, th, data, say)
    checks += _visual_section(source, output, inp, vmaf, visual_max_frames, th, data, say)
    return checks, thumbs


def build_report(
    output: str | Path,
    *,
    source: str | Path | None = None,
    project_dir: str | Path | None = None,
    language: str | None = None,
    thresholds: Thresholds | None = None,
    syncnet: str | Path | None = None,
    face: int | None = None,
    target_lufs: float | None = None,
    loudness_standard: str | None = None,
    vmaf: "bool | VisualRun" = True,
    visual_max_frames: int = 40,
    output_analysis=None, source_analysis=None, whisper=None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Measure and judge ``output`` (see the module docstring for what each input adds).

    Args:
        source: the source video (reference, floor, visual fidelity); default: the project's input.
        project_dir: the dub's project directory (timing, voice, per-segment sync).
        language: the dub's language code; default: found in the project manifest.
        syncnet: path of ``syncnet_v2.model``: adds LSE-D / LSE-C / SyncNet offset.
        face: face track id to score (default: the face on screen longest).
        target_lufs: loudness target; default: the project's config, else -24 LUFS.
        loudness_standard: a standard of :data:`lipdub.loudness_standards.LOUDNESS_STANDARDS` the mix must comply
            with (its target +- tolerance, its true-peak maximum); default: the project's config.
        vmaf: run VMAF when the source is known, or the :class:`~lipdub.qc.visual.VisualRun` started before.
        visual_max_frames: frames sampled for SSIM / PSNR.
        output_analysis: a face analysis of ``output`` to reuse (the pipeline passes the source's when
            the video stream was copied bit for bit); default: analysed here.
        source_analysis: the project's face analysis of the source, when the caller has it loaded
            (shared, not loaded again: a long video's landmarks are hundreds of MB); default: loaded.
        whisper: a loaded faster-whisper model for the intelligibility group (the pipeline passes the
            run's); default: the project's ``asr_model`` loaded here.
    Raises:
        InputError: unreadable media, a project without the language, an unknown face track.
        MissingWeights: ``syncnet`` does not exist.
    """
    say = progress or (lambda msg: None)
    th = thresholds or Thresholds()
    output = Path(output)
    project = Path(project_dir) if project_dir else None
    config = _project_config(project)
    source = Path(source) if source else (Path(config["input"]) if config.get("input") else None)
    L_code = _project_language(project, output, language) if project else language
    info = probe(output)
    data: dict[str, Any] = {
        "version": REPORT_VERSION, "output": str(output.resolve()), "source": str(source.resolve()) if source else None,
        "project": str(project.resolve()) if project else None, "language": L_code,
        "duration_s": round(info.duration_s, 3),
    }
    say("audio")
    target = float(target_lufs if target_lufs is not None else (config.get("target_lufs") or -24.0))
    out16, data["audio"], checks = _soundtrack(output, info, target, loudness_standard or config.get("loudness_standard"), th)
    thumbs: list[tuple[int, float, bytes]] = []
    script = Script.load(project / L.SCRIPT) if project is not None and (project / L.SCRIPT).exists() else None
    if info.has_video:
        more, thumbs = _video_checks(output, out16, source, project, script, L_code, th, data, say, face=face, syncnet=syncnet,
                                     vmaf=vmaf, visual_max_frames=visual_max_frames, output_analysis=output_analysis,
                                     source_analysis=source_analysis)
        checks += more
    if script is not None and L_code is not None:
        checks += _timing_checks(script, L_code, info.duration_s, th, data)
        say("voice")
        data["voice"] = _voice(project, script, L_code, th, checks)
        say("intelligibility")
        data["intelligibility"], more = _intelligibility(project, script, L_code, whisper, th, config.get("asr_model") or "base")
        checks += more
    elif project is not None and L_code is None:
        data["timing"] = {"note": "language of the output not found in the project: pass --language"}
    _conclude(data, checks, th, project, L_code)
    return Report(json_safe(data), thumbs)




def _project_config(project: Path | None) -> dict:
    """The dub's configuration from the project manifest ({} without a project).

    Raises:
        InputError: ``project`` has no manifest.json.
    """
    if project is None:
        return {}
    if not (project / L.MANIFEST).exists():
        raise InputError(f"{project} is not a lipdub project (no manifest.json)", "pass the directory `lipdub dub` wrote (--project)")
    return json.loads((project / L.MANIFEST).read_text()).get("config", {}) or {}

def _intelligibility(project: Path, script: Script, L_code: str, whisper, th: Thresholds, asr_model: str) -> tuple[dict, list[Check]]:
    """The intelligibility group on the dub's dialogue stem (16 kHz mono; None when the project has
    none), see :func:`lipdub.qc.intelligibility.intelligibility_section`."""
    stem = project / L.stem(L_code, "dialogue")
    dialogue = None
    if stem.exists():
        dialogue = read_resampled(stem, 16000)
    return intelligibility_section(script, L_code, dialogue, whisper, th, asr_model)

def _voice(project: Path, script: Script, L_code: str, th: Thresholds, checks: list[Check]) -> dict:
    if (project / L.DIALOGUE_48K).exists():
        src16 = read_resampled(project / L.DIALOGUE_48K, 16000)
    else:
        src16, _ = read_audio(project / L.ANALYSIS_16K, mono=True)
    dub_path = project / L.stem(L_code, "dialogue")
    if not dub_path.exists():
        return {"note": f"stems/{L_code}/dialogue.wav missing"}
    dub16 = read_resampled(dub_path, 16000)
    turns = json.loads((project / L.DIARIZATION).read_text()) if (project / L.DIARIZATION).exists() else []
    src_spans: dict[str, list] = {}
    for t in turns:
        src_spans.setdefault(t["speaker"], []).append((t["start_s"], t["end_s"]))
    if not src_spans:
        for s in script.segments:
            src_spans.setdefault(s.speaker, []).append((s.start_s, s.end_s))
    dub_spans: dict[str, list] = {}
    for s in script.segments:
        tl = s.targets.get(L_code)
        if tl is not None and tl.fit is not None:
            dub_spans.setdefault(s.speaker, []).append((tl.fit.placed_start_s, tl.fit.placed_end_s))
    try:
        figs = speaker_similarity(src16, dub16, src_spans, dub_spans)
    except BackendUnavailable as exc:
        return {"note": str(exc)}
    for f in figs:
        checks.append(judge("voice", f"voice_similarity:{f.speaker}", f"voice similarity of {f.speaker}", f.similarity, th.voice_similarity,
                            "" if f.similarity is not None else "less than 1 s of speech"))
    return {"speakers": [f.as_dict() for f in figs], "method": "resemblyzer d-vector cosine similarity"}


def compare_reports(before: dict, after: dict) -> dict:
    """What changed between two reports of the same dub: the overall verdict, each check whose value
    or verdict changed, and each segment whose text, stretch ratio, overrun or verdict changed."""
    out: dict[str, Any] = {"verdict": {"before": before.get("verdict"), "after": after.get("verdict")}, "checks": [], "segments": []}
    old = {c["name"]: c for c in before.get("checks", [])}
    for c in after.get("checks", []):
        o = old.get(c["name"])
        if o is not None and (o.get("verdict") != c["verdict"] or (o.get("value") != c["value"])):
            out["checks"].append({"name": c["name"], "label": c["label"], "before": o.get("value"), "after": c["value"],
                                  "verdict_before": o.get("verdict"), "verdict_after": c["verdict"]})
    old_segs = {s["id"]: s for s in (before.get("timing") or {}).get("segments", [])}
    for s in (after.get("timing") or {}).get("segments", []):
        o = old_segs.get(s["id"])
        if o is None:
            continue
        diff = {k: {"before": o.get(k), "after": s.get(k)} for k in ("text", "stretch_ratio", "speedup", "overrun_s", "verdict")
                if o.get(k) != s.get(k)}
        if s.get("redo") and s.get("redo") != o.get("redo"):
            r = s["redo"]
            diff["redo"] = {"before": None, "after": f"re-fitted: speed-up limit {r['max_speedup']:g}, {r['max_attempts']} attempts ({r['reason']})"}
        if diff:
            out["segments"].append({"id": s["id"], **diff})
    return out


def write_report(report: Report, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.json`` and the self-contained ``report.html`` into ``out_dir`` (created);
    returns their paths. Files are written to temp names and renamed."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in (("report.json", json.dumps(report.data, indent=2, allow_nan=False)), ("report.html", render_html(report))):
        tmp = d / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, d / name)
        paths.append(d / name)
    return paths[0], paths[1]
