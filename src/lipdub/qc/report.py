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
  similarity per speaker, per-segment sync, and the source face analysis is reused.

``lipdub dub`` runs it as the ``report:<lang>`` stage after ``render:<lang>``: the report goes to
``<project>/report/<lang>/`` and is copied beside the output as ``NAME.report.json`` and
``NAME.report.html``.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import InputError
from .thresholds import Thresholds, Verdict, worst

log = logging.getLogger(__name__)

REPORT_VERSION = 1
N_WORST_FRAMES = 6
LOCAL_WINDOW_S = 1.0  # window of the local sync correlation used to find the worst frames


@dataclass
class Check:
    """One judged figure: ``value`` in ``unit`` against ``threshold`` (text), with its ``verdict``."""

    group: str
    name: str
    label: str
    value: float | None
    unit: str
    verdict: Verdict
    threshold: str
    source: str
    note: str = ""

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("group", "name", "label", "value", "unit", "verdict", "threshold", "source", "note")}


@dataclass
class Report:
    """A built report: ``data`` is what goes to report.json; ``thumbnails`` are PNG bytes of the
    worst-sync frames ``(frame, time_s, png)`` embedded in the HTML page."""

    data: dict
    thumbnails: list[tuple[int, float, bytes]] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return self.data["verdict"]


def _clean(x: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, non-finite floats to None."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    return x


def _check(group: str, name: str, label: str, value, th, note: str = "") -> Check:
    v = None if value is None else float(value)
    if v is not None and math.isfinite(v):
        v = float(f"{v:.6g}")  # no float noise (0.0282, not 0.028200000000000003)
    return Check(group, name, label, v, th.unit, th.judge(v), th.describe(), th.source, note)


# -- lip-sync series -------------------------------------------------------------------------

def _envelope_db(audio: np.ndarray, sample_rate_hz: int, frame_times_s: np.ndarray) -> np.ndarray:
    """RMS level (dBFS) of the audio over each video frame's span, float ``(n_frames,)``."""
    t = np.asarray(frame_times_s)
    dur = float(np.median(np.diff(t))) if len(t) > 1 else 0.04
    out = np.full(len(t), -100.0)
    for i, ti in enumerate(t):
        seg = audio[int(ti * sample_rate_hz):int((ti + dur) * sample_rate_hz)]
        if len(seg):
            out[i] = 10 * np.log10(float(np.mean(seg.astype(np.float64) ** 2)) + 1e-10)
    return out


def _local_correlation(a: np.ndarray, b: np.ndarray, half: int) -> np.ndarray:
    out = np.full(len(a), np.nan)
    for i in range(len(a)):
        sa, sb = a[max(0, i - half):i + half + 1], b[max(0, i - half):i + half + 1]
        ok = np.isfinite(sa) & np.isfinite(sb)
        if ok.sum() >= 5 and np.std(sa[ok]) > 1e-9 and np.std(sb[ok]) > 1e-9:
            out[i] = np.corrcoef(sa[ok], sb[ok])[0, 1]
    return out


def _main_track(analysis, track_id: int | None):
    if analysis is None or not analysis.tracks:
        return None
    if track_id is not None:
        t = next((t for t in analysis.tracks if t.id == track_id), None)
        if t is None:
            raise InputError(f"face track {track_id} not found", f"use one of {[t.id for t in analysis.tracks]}")
        return t
    return max(analysis.tracks, key=lambda t: len(t.frames))


def _thumbnails(video: Path, track, frames: list[int], times: np.ndarray, size_px: int = 200) -> list[tuple[int, float, bytes]]:
    import cv2

    from .visual import iter_selected_frames

    out = {}
    for idx, rgb in iter_selected_frames(video, set(frames)):
        r = track.index_of(idx)
        x0, y0, x1, y1 = track.boxes[r]
        pad = 0.25 * (x1 - x0)
        h, w = rgb.shape[:2]
        crop = rgb[int(max(0, y0 - pad)):int(min(h, y1 + pad)), int(max(0, x0 - pad)):int(min(w, x1 + pad))]
        if crop.size == 0:
            continue
        scale = size_px / max(crop.shape[:2])
        crop = cv2.resize(crop, (max(1, int(crop.shape[1] * scale)), max(1, int(crop.shape[0] * scale))), interpolation=cv2.INTER_AREA)
        ok, png = cv2.imencode(".png", crop[:, :, ::-1])
        if ok:
            out[idx] = png.tobytes()
    return [(f, float(times[f]), out[f]) for f in frames if f in out]


# -- project context -------------------------------------------------------------------------

def _project_language(project_dir: Path, output: Path, language: str | None) -> str | None:
    if language:
        return language
    man = project_dir / "manifest.json"
    if man.exists():
        stages = json.loads(man.read_text()).get("stages", {})
        for name, rec in stages.items():
            if name.startswith("render:") and Path(str(rec.get("details", {}).get("output", ""))).resolve() == output.resolve():
                return name.split(":", 1)[1]
        langs = [n.split(":", 1)[1] for n in stages if n.startswith("render:")]
        if len(langs) == 1:
            return langs[0]
    return None


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
    vmaf: bool = True,
    visual_max_frames: int = 40,
    output_analysis=None,
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
        vmaf: run VMAF when the source is known.
        visual_max_frames: frames sampled for SSIM / PSNR.
        output_analysis: a face analysis of ``output`` to reuse (the pipeline passes the source's when
            the video stream was copied bit for bit); default: analysed here.
    Raises:
        InputError: unreadable media, a project without the language, an unknown face track.
        MissingWeights: ``syncnet`` does not exist.
    """
    from ..audio import read_audio, resample
    from ..faces.analyze import analyze_video
    from ..pipeline import video_frame_times
    from ..script import Script
    from ..contracts.faces import SKIP_NO_FACE, FaceAnalysis
    from ..media.probe import decode_audio, probe
    from .loudness import audio_figures
    from .sync import predicted_mouth, sync_score

    say = progress or (lambda msg: None)
    th = thresholds or Thresholds()
    output = Path(output)
    project = Path(project_dir) if project_dir else None
    config: dict = {}
    if project is not None:
        if not (project / "manifest.json").exists():
            raise InputError(f"{project} is not a lipdub project (no manifest.json)", "pass the directory `lipdub dub` wrote (--project)")
        config = json.loads((project / "manifest.json").read_text()).get("config", {}) or {}
        if source is None and config.get("input"):
            source = config["input"]
    source = Path(source) if source else None
    L = _project_language(project, output, language) if project else language
    info = probe(output)
    checks: list[Check] = []
    data: dict[str, Any] = {
        "version": REPORT_VERSION, "output": str(output.resolve()), "source": str(source.resolve()) if source else None,
        "project": str(project.resolve()) if project else None, "language": L,
        "duration_s": round(info.duration_s, 3),
    }

    # -- audio --------------------------------------------------------------------------------
    say("audio")
    mix48, out16 = decode_audio(output, info)
    aud = audio_figures(mix48, 48000)
    target = float(target_lufs if target_lufs is not None else config.get("target_lufs", -24.0))
    data["audio"] = {**aud.as_dict(), "target_lufs": target, "units": {"integrated_lufs": "LUFS", "true_peak_dbtp": "dBTP", "loudness_range_lu": "LU"}}
    checks += [
        _check("audio", "loudness_error_lu", f"integrated loudness {aud.integrated_lufs:.1f} LUFS vs target {target:g}",
               abs(aud.integrated_lufs - target) if math.isfinite(aud.integrated_lufs) else None, th.loudness_error_lu),
        _check("audio", "true_peak_dbtp", "true peak", aud.true_peak_dbtp, th.true_peak_dbtp),
        _check("audio", "loudness_range_lu", "loudness range (LRA)", aud.loudness_range_lu, th.loudness_range_lu),
        _check("audio", "clipped_share", f"clipped samples ({aud.clipped_samples})", aud.clipped_share, th.clipped_share),
    ]

    # -- lip sync -----------------------------------------------------------------------------
    thumbs: list[tuple[int, float, bytes]] = []
    sync: dict[str, Any] = {}
    script = None
    if project is not None and (project / "script.json").exists():
        script = Script.load(project / "script.json")
    if info.has_video:
        say("faces of the output")
        out_times = video_frame_times(output)
        out_an = output_analysis if output_analysis is not None else analyze_video(output)
        track = _main_track(out_an, face)
        src_an = src_times = src16 = None
        if source is not None:
            sp = probe(source)
            _, src16 = decode_audio(source, sp)
            if project is not None and (project / "audio/dialogue_48k.wav").exists():
                a, sr = read_audio(project / "audio/dialogue_48k.wav", mono=True)
                src16 = resample(a, sr, 16000)  # the source's speech without its music and effects
            if project is not None and (project / "faces/faces.json").exists():
                src_an = FaceAnalysis.load(project / "faces")
                src_times = np.load(project / "faces/frame_times.npy")
            elif sp.has_video:
                say("faces of the source")
                src_an = analyze_video(source)
                src_times = video_frame_times(source)
        # Lip sync is measured against speech: the dub's dialogue stem when the project has it (music
        # and effects under the speech only blur the mel features), else the output's soundtrack.
        speech16, sync["audio"] = out16, "output soundtrack"
        if project is not None and L and (project / f"stems/{L}/dialogue.wav").exists():
            a, sr = read_audio(project / f"stems/{L}/dialogue.wav", mono=True)
            speech16, sync["audio"] = resample(a, sr, 16000), f"stems/{L}/dialogue.wav (and the source's dialogue stem for the reference)"
        if track is None:
            sync["note"] = "no face in the output: lip sync not measured"
        else:
            valid = (track.skip & SKIP_NO_FACE) == 0
            times = out_times[track.start_frame:track.end_frame]
            say("lip sync")
            dub_s = sync_score(track.mouth_opening, speech16, 16000, times, valid=valid, track=track.id)
            sync["dub"] = dub_s.as_dict()
            sync["per_track"] = []
            for t in out_an.tracks:
                if len(t.frames) >= 40 and t.id != track.id:
                    v = (t.skip & SKIP_NO_FACE) == 0
                    sync["per_track"].append(sync_score(t.mouth_opening, speech16, 16000, out_times[t.start_frame:t.end_frame], valid=v, track=t.id).as_dict())
            sync["per_track"].insert(0, dub_s.as_dict())
            src_track = _main_track(src_an, face) if src_an is not None else None
            if src_track is not None:
                sv = (src_track.skip & SKIP_NO_FACE) == 0
                st = src_times[src_track.start_frame:src_track.end_frame]
                sync["reference"] = sync_score(src_track.mouth_opening, src16, 16000, st, valid=sv, track=src_track.id).as_dict()
                sync["floor"] = sync_score(src_track.mouth_opening, speech16, 16000, st, valid=sv, track=src_track.id).as_dict()
            # series for the plot and the worst frames
            env = _envelope_db(speech16, 16000, times)
            pred = predicted_mouth(track.mouth_opening, valid, speech16, 16000, times, dub_s.offset_frames)
            local = _local_correlation(np.where(valid, track.mouth_opening, np.nan), pred,
                                       max(3, int(LOCAL_WINDOW_S / max(1e-3, float(np.median(np.diff(times)))) / 2)) if len(times) > 1 else 3)
            speech = env > (np.max(env) - 30)
            sync["series"] = {"frame": track.frames.tolist(), "time_s": np.round(times, 4).tolist(),
                              "mouth_opening": np.round(track.mouth_opening.astype(float), 4).tolist(),
                              "predicted_mouth_opening": np.round(pred, 4).tolist(), "speech_envelope_dbfs": np.round(env, 2).tolist(),
                              "local_correlation": np.round(local, 3).tolist()}
            cand = [i for i in np.argsort(np.where(np.isfinite(local) & speech & valid, local, np.inf)) if np.isfinite(local[i]) and speech[i] and valid[i]]
            picked: list[int] = []
            min_gap = max(1, int(LOCAL_WINDOW_S / max(1e-3, float(np.median(np.diff(times)))))) if len(times) > 1 else 1
            for i in cand:
                if all(abs(i - j) >= min_gap for j in picked):
                    picked.append(int(i))
                if len(picked) == N_WORST_FRAMES:
                    break
            frames = sorted(int(track.frames[i]) for i in picked)
            sync["worst_frames"] = [{"frame": f, "time_s": round(float(out_times[f]), 3), "local_correlation": float(local[f - track.start_frame])} for f in frames]
            thumbs = _thumbnails(output, track, frames, out_times)
            # per segment
            if script is not None and L is not None:
                rows = []
                for s in script.segments:
                    tl = s.targets.get(L)
                    if tl is None or tl.fit is None:
                        continue
                    a, b = tl.fit.placed_start_s - 0.5, tl.fit.placed_end_s + 0.5
                    sel = (times >= a) & (times < b)
                    if sel.sum() < 30:
                        rows.append({"segment": s.id, "score": None, "note": "fewer than 30 frames of the face"})
                        continue
                    sc = sync_score(track.mouth_opening[sel], speech16, 16000, times[sel], valid=valid[sel], folds=3, max_lag_frames=8, track=track.id)
                    rows.append({"segment": s.id, "offset_frames": sc.offset_frames, "peak_correlation": sc.peak_correlation,
                                 "confidence": sc.confidence, "n_frames": sc.n_frames})
                sync["per_segment"] = rows
            conf_check = _check("sync", "sync_confidence", "lip-sync confidence (landmark score)", dub_s.confidence, th.sync_min_confidence)
            checks.append(conf_check)
            note = "" if conf_check.verdict == "pass" else "confidence too low to trust the offset"
            floor = sync.get("floor")
            # the floor pairs the untouched source mouth with the dub audio (they share only the
            # speech/silence timing); unless the video is the source's own (no lip-sync: floor == dub),
            # a dub whose mouth does not follow its audio better than that has no trustworthy offset
            same = floor is not None and np.allclose(floor["correlation_by_lag"], dub_s.correlation_by_lag, atol=1e-3)
            if floor is not None and not same:
                over = _check("sync", "sync_confidence_over_floor", "confidence above the no-lip-sync floor's",
                              dub_s.confidence - floor["confidence"], th.sync_confidence_over_floor)
                checks.append(over)
                if over.verdict != "pass" and not note:
                    note = (f"the no-lip-sync floor reaches confidence {floor['confidence']:.2f}: the dub's mouth does not follow "
                            "its audio clearly enough to trust the offset")
            off = _check("sync", "sync_offset_frames", f"AV offset {dub_s.offset_frames:+d} frames (landmark score)", abs(dub_s.offset_frames), th.sync_offset_frames)
            if note and off.verdict == "fail":
                off.verdict, off.note = "warn", note
            checks.append(off)
            if "floor" in sync:
                checks.append(_check("sync", "sync_vs_floor", "dub peak correlation minus the no-lip-sync floor's",
                                     dub_s.peak_correlation - sync["floor"]["peak_correlation"], th.sync_vs_floor))
        data["sync"] = sync

        # -- SyncNet ------------------------------------------------------------------------------
        if syncnet is not None:
            from .syncnet import load_syncnet, video_syncnet_score

            model = load_syncnet(syncnet)
            say("SyncNet")
            lse = video_syncnet_score(model, output, out_an, out_times, out16, track_id=track.id if track else None)
            data["syncnet"] = lse.as_dict() if lse else {"note": "no face"}
            if lse is not None:
                checks += [_check("syncnet", "lse_d", "SyncNet LSE-D", lse.lse_d, th.lse_d),
                           _check("syncnet", "lse_c", "SyncNet LSE-C", lse.lse_c, th.lse_c),
                           _check("syncnet", "syncnet_offset_frames", f"SyncNet AV offset {lse.offset_frames:+d} frames (25 fps)",
                                  abs(lse.offset_frames), th.syncnet_offset_frames)]
        else:
            data["syncnet"] = {"note": "not computed: pass --syncnet PATH to syncnet_v2.model"}

        # -- visual -------------------------------------------------------------------------------
        if source is not None and src_an is not None:
            from .visual import compare_videos

            say("visual fidelity")
            vis = compare_videos(source, output, analysis=src_an, max_frames=visual_max_frames, vmaf=vmaf)
            data["visual"] = vis.as_dict()
            checks += [_check("visual", "ssim", "SSIM, whole frame", vis.ssim, th.ssim),
                       _check("visual", "ssim_outside_mouth", "SSIM outside the mouth", vis.ssim_outside_mouth, th.ssim_outside_mouth),
                       _check("visual", "psnr_outside_mouth_db", "PSNR outside the mouth",
                              vis.psnr_outside_mouth_db if vis.psnr_outside_mouth_db is not None else math.inf, th.psnr_outside_mouth_db,
                              "identical outside the mouth" if vis.psnr_outside_mouth_db is None else "")]
            if vis.vmaf is not None:
                checks.append(_check("visual", "vmaf", "VMAF", vis.vmaf, th.vmaf))
        else:
            data["visual"] = {"note": "not computed: pass --source (the source video)"}

    # -- timing and voice (project) -------------------------------------------------------------
    if script is not None and L is not None:
        from .timing import timing_figures

        tim = timing_figures(script, L, info.duration_s, th)
        data["timing"] = tim.as_dict()
        checks += [_check("timing", "fit_share", "segments fitted without a stretch above the limit", tim.fit_share, th.fit_share),
                   _check("timing", "overlap_s", "largest overlap of two lines", tim.max_overlap_s, th.overlap_s),
                   _check("timing", "subtitle_outside_s", "subtitles outside the video", tim.subtitle_outside_s, th.subtitle_outside_s)]
        seg_v = worst(s.verdict for s in tim.segments)
        bad = [s.id for s in tim.segments if s.verdict == "fail"]
        checks.append(Check("timing", "segments", f"per-segment fit ({len(bad)} failing)", float(len(bad)), "segments", seg_v,
                            "each segment: stretch ratio, overrun, overlap", "see the segment table"))
        say("voice")
        data["voice"] = _voice(project, script, L, th, checks, read_audio, resample)
    elif project is not None and L is None:
        data["timing"] = {"note": "language of the output not found in the project: pass --language"}

    verdict = worst(c.verdict for c in checks) if checks else "n/a"
    data["verdict"] = verdict
    data["reasons"] = [f"{c.label}: {c.value:g} {c.unit} ({c.verdict}: {c.threshold})" if c.value is not None else f"{c.label}: {c.verdict}"
                       for c in checks if c.verdict in ("warn", "fail")]
    data["checks"] = [c.as_dict() for c in checks]
    data["thresholds"] = th.model_dump()
    if project is not None and L is not None:
        prev = project / "report" / L / "report.json"
        if prev.exists():
            try:
                data["changes"] = compare_reports(json.loads(prev.read_text()), data)
            except (ValueError, KeyError):  # pragma: no cover - a hand-edited previous report
                pass
    return Report(_clean(data), thumbs)


def _voice(project: Path, script, L: str, th: Thresholds, checks: list[Check], read_audio, resample) -> dict:
    from ..errors import BackendUnavailable
    from .voice import speaker_similarity

    if (project / "audio/dialogue_48k.wav").exists():
        a, sr = read_audio(project / "audio/dialogue_48k.wav", mono=True)
        src16 = resample(a, sr, 16000)
    else:
        src16, _ = read_audio(project / "audio/analysis_16k.wav", mono=True)
    dub_path = project / f"stems/{L}/dialogue.wav"
    if not dub_path.exists():
        return {"note": f"stems/{L}/dialogue.wav missing"}
    d, sr = read_audio(dub_path, mono=True)
    dub16 = resample(d, sr, 16000)
    turns = json.loads((project / "analysis/diarization.json").read_text()) if (project / "analysis/diarization.json").exists() else []
    src_spans: dict[str, list] = {}
    for t in turns:
        src_spans.setdefault(t["speaker"], []).append((t["start_s"], t["end_s"]))
    if not src_spans:
        for s in script.segments:
            src_spans.setdefault(s.speaker, []).append((s.start_s, s.end_s))
    dub_spans: dict[str, list] = {}
    for s in script.segments:
        tl = s.targets.get(L)
        if tl is not None and tl.fit is not None:
            dub_spans.setdefault(s.speaker, []).append((tl.fit.placed_start_s, tl.fit.placed_end_s))
    try:
        figs = speaker_similarity(src16, dub16, src_spans, dub_spans)
    except BackendUnavailable as exc:
        return {"note": str(exc)}
    for f in figs:
        checks.append(_check("voice", f"voice_similarity:{f.speaker}", f"voice similarity of {f.speaker}", f.similarity, th.voice_similarity,
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
    from .html import render_html

    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in (("report.json", json.dumps(report.data, indent=2, allow_nan=False)), ("report.html", render_html(report))):
        tmp = d / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, d / name)
        paths.append(d / name)
    return paths[0], paths[1]


def report_stage(project, language: str, output: Path, source: Path, target_lufs: float) -> tuple[list, dict, str]:
    """The ``report:<lang>`` stage of :class:`lipdub.pipeline.Dubber`: build the report of the
    rendered ``output``, write it to ``<project>/report/<lang>/`` and copy it beside the output as
    ``NAME.report.json`` / ``NAME.report.html``. Returns the stage's artifacts, details, backend."""
    from ..contracts.faces import FaceAnalysis

    render = project.manifest.stages.get(f"render:{language}")
    copied = render is not None and render.details.get("video") == "copied" and (project.root / "faces/faces.json").exists()
    # a copied video stream has the source's frames: its face analysis is the project's
    analysis = FaceAnalysis.load(project.root / "faces") if copied else None
    rep = build_report(output, source=source, project_dir=project.root, language=language, target_lufs=target_lufs,
                       output_analysis=analysis)
    j, h = write_report(rep, project.root / "report" / language)
    base = output.with_suffix("")
    arts = [j, h]
    for src, suffix in ((j, ".report.json"), (h, ".report.html")):
        dst = base.with_name(base.name + suffix)
        shutil.copyfile(src, dst)
        arts.append(dst)
    details = {"verdict": rep.verdict, "reasons": rep.data["reasons"][:10], "report": str(arts[3])}
    return arts, details, "qc"


def encode_png(png: bytes) -> str:
    """``data:`` URI of PNG bytes (for the self-contained page)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def qc_status() -> list:
    """``lipdub doctor`` rows of the quality report's optional parts: VMAF (an FFmpeg with libvmaf),
    SyncNet scoring (torch + python_speech_features; the weights are the user's), the plots (matplotlib)
    and SSIM / PSNR (scikit-image)."""
    import importlib.util

    from ..errors import LipdubError
    from ..registry import BackendStatus
    from .visual import vmaf_ffmpeg

    rows = []
    try:
        rows.append(BackendStatus("qc", "vmaf", True, vmaf_ffmpeg()))
    except LipdubError as exc:
        rows.append(BackendStatus("qc", "vmaf", False, str(exc)))
    for name, mods, hint in (("syncnet", ("torch", "python_speech_features"), "pip install python_speech_features; pass --syncnet syncnet_v2.model"),
                             ("plots", ("matplotlib",), "pip install 'lipdub[qc]'"),
                             ("ssim/psnr", ("skimage",), "pip install 'lipdub[qc]'")):
        missing = [m for m in mods if importlib.util.find_spec(m) is None]
        rows.append(BackendStatus("qc", name, not missing, f"missing {', '.join(missing)}: {hint}" if missing else "installed"))
    return rows
