"""Lip sync of Spanish dubs by the ``retrieval`` backend: the dub against the source reference and the
no-lip-sync floor (DESIGN.md section 4), and the viseme check.

    .venv/bin/python bench/lipsync_dub_sync.py [CLIP ...] [--driver auto|acoustic] [--option KEY=VALUE ...] [--keep DIR]

For each clip (default: the three talking heads of issue 15; ../shared/testdata or $LIPDUB_TESTDATA):
transcribe, translate to Spanish, speak with espeak-ng, fit each line to its slot (bench/_dub.py: the
pipeline's defaults, driven through the library), align the source's phonemes (transcript words +
espeak G2P + DTW, :mod:`lipdub.lipsync.align`), plan with the retrieval backend, render, analyse the
faces of the output, and print for the dub, the reference (source video + its own audio) and the floor
(source video + dub audio): the landmark sync score's confidence, AV offset and peak correlation; the
dub's confidence as a share of the reference's and its margin over the floor; per dub line, how the
output's and the floor's mouth opening follow the dub's level, and how much of the donors' opening the
output shows (slope, r); and the viseme check
(:mod:`lipdub.qc.visemes`: share of p/b/m with the lips closed, of open vowels with the mouth open), and
the SSIM outside the mouth against the source (:func:`lipdub.qc.visual.compare_videos`, 40 frames);
and where the sync is lost (:func:`stage_figures`): the donor runs (share of the planned frames in runs of
consecutive source frames 1, 2 and 3+ long, and in holds of one picture), and the sync confidence of
the planned target (its first mouth parameter, the opening direction), of the donors' own measured
openings (the source's landmarks, unsmoothed) and of the output's unsmoothed re-tracked opening against
the dub, beside the output's (re-tracked and smoothed, as the report measures it).

Run it with ``PYTHONPATH=/work/main/src`` (code without :mod:`lipdub.lipsync.align`) for the *before*
figures: the same dub, planned by that code's retrieval (acoustic model + p/b/m closures).
``--driver acoustic`` plans with this code's acoustic fallback instead of the visemes; ``--option``
sets a :class:`~lipdub.backends.lipsync.actor_model.RetrievalOptions` field (e.g. ``jump_cost=1``). ``--keep DIR``
writes, per clip, a project-like directory (faces/, lipsync/es/plans.json, manifest.json) and the
output video for bench/inspect_frames.py. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import TESTDATA
from _dub import SR, load_clip, source_phonemes, spanish_dub

from lipdub.backends.lipsync.features import audio_features_per_frame
from lipdub.backends.lipsync.retrieval import RetrievalBackend, RetrievalOptions
from lipdub.backends.lipsync.unit_selection import run_lengths
from lipdub.faces.analyze import analyze_video
from lipdub.faces.tracking import mouth_opening
from lipdub.lipsync.render import render_lipsync
from lipdub.qc.sync import sync_score, track_sync_score
from lipdub.qc.visual import compare_videos

CLIPS = ["th2_retalking_face1.mp4", "th_retalking_face5.mp4", "th_voxceleb_pcavs_00086.mp4"]


def viseme_figures(out_analysis, times, phonemes, lines, audio) -> str:
    try:
        from lipdub.qc.visemes import viseme_check
    except ImportError:  # the before code has no viseme check
        return ""
    track = max(out_analysis.tracks, key=lambda t: len(t.frames))
    vc = viseme_check(track, times, phonemes, lines, audio=audio, sample_rate_hz=SR)
    return f"{vc.bilabial_closed_share:>8.2f} ({vc.n_bilabial:>2d}){vc.open_vowel_open_share:>7.2f} ({vc.n_open_vowel:>2d})"


def line_figures(out_analysis, clip, plan, dub) -> str:
    """Per dub line: Pearson r of the output's mouth opening (and of the untouched source's, the floor)
    with the dub's level (dBFS over +-50 ms, :func:`lipdub.backends.lipsync.features.audio_features_per_frame`)
    on the line's frames; and the output's opening against the donors' own (measured in the source):
    slope of the least-squares line and r, which says how much of the planned mouth the output shows."""
    src = clip.track
    out = max(out_analysis.tracks, key=lambda t: len(t.frames))
    f = plan.frames[(plan.frames >= out.start_frame) & (plan.frames < out.end_frame)]
    donors = plan.source_frames[np.isin(plan.frames, f)]
    t = np.asarray(clip.times, np.float64)[f]
    level = np.asarray(audio_features_per_frame(dub.audio, SR, t).energy_db, np.float64)
    o_out = out.mouth_opening[f - out.start_frame].astype(np.float64)
    o_src = src.mouth_opening[f - src.start_frame].astype(np.float64)
    o_don = src.mouth_opening[donors - src.start_frame].astype(np.float64)
    parts = []
    for k, (a, b, _) in enumerate(dub.lines):
        m = (t >= a) & (t < b)
        if m.sum() >= 8:
            parts.append(f"line {k}: r(dub, level) {np.corrcoef(o_out[m], level[m])[0, 1]:+.2f} "
                         f"floor {np.corrcoef(o_src[m], level[m])[0, 1]:+.2f} ({int(m.sum())} frames)")
    slope = np.polyfit(o_don, o_out, 1)[0] if len(f) > 2 else float("nan")
    r = np.corrcoef(o_don, o_out)[0, 1] if len(f) > 2 else float("nan")
    return "; ".join(parts) + f"; output vs donor opening: slope {slope:.2f}, r {r:.2f}"


def stage_figures(clip, plan, dub, out_analysis=None) -> str:
    """Donor runs and the sync confidence (offset) of the target, of the donors' raw openings and, given
    the output's analysis, of the output's own unsmoothed opening (its ``landmarks_raw``: what the
    re-tracked output shows before the tracker's One Euro smoothing) on the planned frames (see the
    module docstring)."""
    src = clip.track
    f, don = plan.frames, plan.source_frames
    if len(f) < 2:
        return "no planned frames"
    hold = (np.diff(don) == 0) & (np.diff(f) == 1)
    runs = run_lengths(don, f)
    share = [runs[runs == 1].sum(), runs[runs == 2].sum(), runs[runs >= 3].sum()]
    t = np.asarray(clip.times, np.float64)[f]

    def conf(x) -> str:
        s = sync_score(np.asarray(x, np.float64), dub.audio, SR, t)
        return f"{s.confidence:.3f} ({s.offset_frames:+d})"

    raw = mouth_opening(src.landmarks_raw[don - src.start_frame])
    out_raw = ""
    if out_analysis is not None:
        out = max(out_analysis.tracks, key=lambda t: len(t.frames))
        inside = (f >= out.start_frame) & (f < out.end_frame)
        if inside.all():
            out_raw = f", of the output's unsmoothed opening {conf(mouth_opening(out.landmarks_raw[f - out.start_frame]))}"
    return (f"runs 1/2/3+: {share[0] / len(f):.2f}/{share[1] / len(f):.2f}/{share[2] / len(f):.2f} of the frames, "
            f"holds {hold.sum() / len(f):.2f}; sync conf of the target {conf(plan.target_mouth[:, 0])}, "
            f"of the donors' raw openings {conf(raw)}{out_raw}")


def parse_options(items: list[str]) -> dict:
    """``KEY=VALUE`` strings -> RetrievalOptions fields (the numeric and text ones), each VALUE read as
    its field's default type."""
    defaults, out = RetrievalOptions(), {}
    fields = [k for k in RetrievalOptions.__dataclass_fields__ if type(getattr(defaults, k)) in (int, float, str)]
    for item in items:
        key, _, value = item.partition("=")
        if key not in fields or not value:
            raise SystemExit(f"--option {item!r}: use KEY=VALUE with KEY one of {', '.join(fields)}")
        out[key] = type(getattr(defaults, key))(value)
    return out


def keep_project(keep: Path, clip, plan, out: Path) -> None:
    d = keep / clip.path.stem
    clip.analysis.save(d / "faces")
    (d / "lipsync/es").mkdir(parents=True, exist_ok=True)
    (d / "lipsync/es/plans.json").write_text(json.dumps({"plans": [
        {"track": plan.track_id, "frames": plan.frames.tolist(), "source_frames": plan.source_frames.tolist()}]}))
    (d / "manifest.json").write_text(json.dumps({"input_path": str(clip.path)}))
    (d / "output.mp4").write_bytes(out.read_bytes())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="*", default=CLIPS)
    ap.add_argument("--driver", default=None, help="retrieval driver (this code only): auto, visemes, acoustic")
    ap.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="a retrieval option (repeatable)")
    ap.add_argument("--keep", type=Path, default=None, help="keep projects for bench/inspect_frames.py here")
    args = ap.parse_args()
    opts = {"driver": args.driver} if args.driver else {}
    opts.update(parse_options(args.option))
    if opts:
        print(f"retrieval options: {opts}")
    print(f"{'clip':<30}{'':<7}{'conf':>7}{'off':>5}{'peak':>7}   dub/ref  dub-floor  p/b/m closed  open-vowel open  mouth model")
    for name in args.clips:
        path = Path(name) if Path(name).exists() else TESTDATA / name
        clip = load_clip(path)
        track = clip.track
        src_ph = source_phonemes(clip)
        dub = spanish_dub(clip.transcript.segments, len(clip.audio), clip.language)
        frames = track.frames[track.skip == 0].astype(np.int64)
        backend = RetrievalBackend(**opts)
        if getattr(backend, "uses_phonemes", False):
            plan = backend.plan(clip.analysis, track, frames, clip.times, clip.audio, dub.audio, SR, dub.phonemes, src_ph)
        else:
            plan = backend.plan(clip.analysis, track, frames, clip.times, clip.audio, dub.audio, SR, dub.phonemes)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "dub.mp4"
            render_lipsync(clip.path, clip.analysis, [(plan, track)], out)
            out_an = analyze_video(out)
            visual = compare_videos(clip.path, out, clip.analysis, max_frames=40, vmaf=False)
            if args.keep:
                keep_project(args.keep, clip, plan, out)
        dub_s = track_sync_score(out_an, dub.audio, SR, clip.times)
        ref = track_sync_score(clip.analysis, clip.audio, SR, clip.times)
        floor = track_sync_score(clip.analysis, dub.audio, SR, clip.times)
        vis = viseme_figures(out_an, clip.times, dub.phonemes, dub.lines, dub.audio)
        for label, s in (("dub", dub_s), ("ref", ref), ("floor", floor)):
            tail = ""
            if label == "dub":
                tail = (f"{dub_s.confidence / max(ref.confidence, 1e-9):>10.2f}{dub_s.confidence - floor.confidence:>+11.3f}  {vis}"
                        f"  {plan.details.get('mouth_model', '')}")
            print(f"{path.name:<30}{label:<7}{s.confidence:>7.3f}{s.offset_frames:>+5d}{s.peak_correlation:>7.3f}{tail}")
        print(f"{path.name:<30}{line_figures(out_an, clip, plan, dub)}")
        print(f"{path.name:<30}{stage_figures(clip, plan, dub, out_an)}")
        print(f"{path.name:<30}SSIM outside the mouth {visual.ssim_outside_mouth:.4f} (whole frame {visual.ssim:.4f}, "
              f"{visual.frames_compared} frames); {plan.details.get('n_frames')} frames planned, mean run "
              f"{plan.details.get('mean_run_length')}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
