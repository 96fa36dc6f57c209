"""Self-reconstruction benchmark of the ``retrieval`` lip-sync (DESIGN.md section 4).

    .venv/bin/python bench/selfrecon.py [CLIP ...] [--no-phonemes]

For each talking-head clip whose audio is the visible speaker (../shared/testdata or $LIPDUB_TESTDATA):
fit on the first 70 % of the face track (audio, mouths and the phoneme labels of its transcript:
faster-whisper words + espeak G2P + DTW, bench/_dub.py), re-synthesize the last 30 % from its own audio
and phonemes without seeing its mouths, composite the retrieved lower faces onto the real frames, and
compare with the real frames:

* LMD: lip landmark distance of the retrieved mouths to the true ones (measured landmarks, aligned to
  the track's canonical face, inter-ocular units), and its ratio to ``random_closed``;
* mouth-region SSIM and PSNR (scikit-image) of the composite against the real frame, over the box of
  the true lips enlarged by 25 %;
* the landmark sync score (:mod:`lipdub.qc.sync`) of the shown mouths against the audio;

for the method (``visemes`` with phonemes, ``acoustic`` without: the audio-to-mouth model) and the
baselines of :mod:`lipdub.backends.lipsync.selfrecon`: ``random_closed`` (random mouths through the same
closures and the same pose-matching search: the ratio measures the mouth model alone; LMD over 20
seeds, pictures from the first), ``random`` (uniform donors), ``mean_shape`` (LMD only) and ``oracle``
(the true mouths through the same search: the best this library and search reach). Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from _common import TESTDATA
from _dub import SR, load_clip, source_phonemes

from lipdub.backends.lipsync.features import LIP_POINTS
from lipdub.backends.lipsync.selfrecon import random_retrieval_plan, self_reconstruction_lmd
from lipdub.lipsync.compositor import Compositor
from lipdub.lipsync.render import collect_donors
from lipdub.qc.sync import sync_score

CLIPS = ["th2_retalking_face1.mp4", "th_retalking_face5.mp4", "th_voxceleb_pcavs_00086.mp4", "pr_voxceleb_pcavs_00015.mp4"]


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


def _row(name, method, lmd, base, pics, clip, track) -> None:
    ssim = psnr = conf = float("nan")
    if pics is not None:
        ssim, psnr = mouth_metrics(clip.path, clip.analysis, track, pics)
        shown = track.mouth_opening[pics.source_frames - track.start_frame]
        conf = sync_score(shown, clip.audio, SR, clip.times[pics.frames], max_lag_frames=5, folds=3).confidence
    print(f"{name:<30}{method:<15}{lmd:>8.4f}{lmd / base:>7.2f}{ssim:>7.3f}{psnr:>9.2f}{conf:>10.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="*", default=CLIPS)
    ap.add_argument("--no-phonemes", action="store_true", help="the acoustic path only")
    args = ap.parse_args()
    print(f"{'clip':<30}{'method':<15}{'LMD':>8}{'ratio':>7}{'SSIM':>7}{'PSNR dB':>9}{'sync conf':>10}   (ratio: LMD / random_closed LMD)")
    for name in args.clips:
        path = Path(name) if Path(name).exists() else TESTDATA / name
        clip = load_clip(path)
        if not clip.analysis.tracks:
            print(f"{path.name:<30}no face")
            continue
        track = clip.track
        runs = [("acoustic", None)] if args.no_phonemes else [("visemes", source_phonemes(clip)), ("acoustic", None)]
        base = None
        for label, ph in runs:
            sr = self_reconstruction_lmd(track, clip.times, clip.audio, SR, phonemes=ph)
            if base is None:
                base = sr
                _row(path.name, "random_closed", sr.lmd_random_closed, sr.lmd_random_closed, sr.random_closed_plan, clip, track)
                fit_rows = (np.asarray(track.skip) == 0) & (np.arange(len(track.frames)) < int(round(len(track.frames) * 0.7)))
                rnd = random_retrieval_plan(track, sr.plan.frames, seed=0, library_rows=np.flatnonzero(fit_rows))
                _row(path.name, "random", sr.lmd_random, sr.lmd_random_closed, rnd, clip, track)
                _row(path.name, "mean_shape", sr.lmd_mean_shape, sr.lmd_random_closed, None, clip, track)
                _row(path.name, "oracle", sr.lmd_oracle, sr.lmd_random_closed, None, clip, track)
            _row(path.name, f"retr. {sr.driver}", sr.lmd_retrieval, sr.lmd_random_closed, sr.plan, clip, track)  # its own closures
        print(f"{'':<30}R^2 {base.r2_heldout:.3f} (acoustic model on the 70 %), mouth/speech r "
              f"{base.plan.details['av_correlation']:.2f}, {base.n_fit} library / {base.n_test} test frames")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
