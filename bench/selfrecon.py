"""Self-reconstruction benchmark of the ``retrieval`` lip-sync (DESIGN.md section 4).

    .venv/bin/python bench/selfrecon.py [CLIP ...]

For each talking-head clip of ../shared/testdata (or $LIPDUB_TESTDATA): fit on the first 70 % of the
face track (audio and mouths), re-synthesize the last 30 % from its own audio without seeing its
mouths, composite the retrieved lower faces onto the real frames, and compare with the real frames:

* LMD: lip landmark distance of the retrieved mouths to the true ones, in inter-ocular units;
* mouth-region SSIM and PSNR (scikit-image) of the composite against the real frame, over the box of
  the true lips enlarged by 25 %;
* the landmark sync score (:mod:`lipdub.qc.sync`) of the shown mouths against the audio;

for ``retrieval`` and for a random-retrieval baseline (same library, uniform donors; LMD averaged
over 20 seeds, pictures from seed 0), the held-out R^2 of the actor's audio-to-mouth model and the
source's mouth/speech correlation r(av) (below 0.15 the soundtrack is not this face's speech and the
speaker-independent energy mapping drives the mouth instead), and the LMD of an oracle (the same retrieval given the true
mouths as its target: the best this library and search can do). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from _common import TESTDATA
from lipdub.faces.analyze import analyze_video
from lipdub.lipsync.render import collect_donors
from lipdub.lipsync.compositor import Compositor
from lipdub.backends.lipsync.features import LIP_POINTS
from lipdub.backends.lipsync.retrieval import random_retrieval_plan, self_reconstruction_lmd
from lipdub.media.probe import video_frame_times
from lipdub.qc.sync import sync_score
from lipdub.media.probe import decode_audio, probe

CLIPS = ["th2_retalking_face1.mp4", "th_retalking_face5.mp4", "th_voxceleb_pcavs_00086.mp4",
         "th_latentsync_demo1_video.mp4", "th_latentsync_demo2_video.mp4"]


def mouth_metrics(path, analysis, track, plan) -> tuple[float, float]:
    """Mean mouth-region SSIM and PSNR (dB) of composites against the real frames of ``plan.frames``."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from lipdub.faces.analyze import iter_frames

    donors = collect_donors(path, [(plan, track)])
    comp = Compositor()
    wanted = {int(f): k for k, f in enumerate(plan.frames)}
    ssims, psnrs = [], []
    for i, rgb in iter_frames(path):
        k = wanted.get(i)
        if k is None:
            continue
        donor = donors[(track.id, int(plan.source_frames[k]))]
        d_rgb, d_lm = donor.as_frame(rgb)
        lm = track.landmarks[track.index_of(i)]
        out = comp.composite(rgb, lm, d_rgb, d_lm, key=track.id, donor_is_frame=True)
        lips = lm[LIP_POINTS, :2]
        (x0, y0), (x1, y1) = lips.min(axis=0), lips.max(axis=0)
        mx, my = 0.25 * (x1 - x0), 0.25 * (y1 - y0)
        x0, y0 = int(max(0, x0 - mx)), int(max(0, y0 - my))
        x1, y1 = int(min(rgb.shape[1], x1 + mx)), int(min(rgb.shape[0], y1 + my))
        a, b = rgb[y0:y1, x0:x1], out[y0:y1, x0:x1]
        if min(a.shape[:2]) < 7:
            continue
        ssims.append(structural_similarity(a, b, channel_axis=2))
        psnrs.append(peak_signal_noise_ratio(a, b, data_range=255))
    return float(np.mean(ssims)), float(np.mean(psnrs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="*", default=CLIPS)
    args = ap.parse_args()
    print(f"{'clip':<32}{'method':<11}{'LMD':>8}{'ratio':>7}{'SSIM':>7}{'PSNR dB':>9}{'sync conf':>10}{'R^2':>7}{'r(av)':>7}{'oracle':>8}")
    for name in args.clips:
        path = Path(name) if Path(name).exists() else TESTDATA / name
        analysis = analyze_video(path)
        if not analysis.tracks:
            print(f"{path.name:<32}no face")
            continue
        track = max(analysis.tracks, key=lambda t: len(t.frames))
        times = video_frame_times(path)
        _, audio = decode_audio(path, probe(path))
        sr = self_reconstruction_lmd(track, times, audio, 16000)
        fit_rows = np.flatnonzero((np.asarray(track.skip) == 0) & (np.arange(len(track.frames)) < int(round(len(track.frames) * 0.7))))
        rnd = random_retrieval_plan(track, sr.plan.frames, seed=0, library_rows=fit_rows)
        for method, plan, lmd in (("retrieval", sr.plan, sr.lmd_retrieval), ("random", rnd, sr.lmd_random)):
            ssim, psnr = mouth_metrics(path, analysis, track, plan)
            shown = track.mouth_opening[plan.source_frames - track.start_frame]
            score = sync_score(shown, audio, 16000, times[plan.frames], max_lag_frames=5, folds=3)
            ratio = lmd / sr.lmd_random
            print(f"{path.name:<32}{method:<11}{lmd:>8.4f}{ratio:>7.2f}{ssim:>7.3f}{psnr:>9.2f}{score.confidence:>10.3f}{sr.r2_heldout:>7.3f}{sr.plan.details['av_correlation']:>7.2f}{sr.lmd_oracle / sr.lmd_random:>8.2f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
