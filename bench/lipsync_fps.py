"""Frames per second of the lip-sync (retrieval plan) and compositor stages at 720p and 1080p.

    .venv/bin/python bench/lipsync_fps.py [--frames 200]

Makes 720p (720x1280) and 1080p (1080x1920) H.264 versions of the first frames of the portrait
talking head th_latentsync_demo2_video.mp4 (../shared/testdata or $LIPDUB_TESTDATA), analyses the
faces (not timed), then times, driving the face with a Spanish espeak-ng line spoken over the clip's
length (its phoneme timings drive the viseme path, as in a dub):

* plan: the retrieval backend (model fit, viseme trajectory, Viterbi) for every frame;
* composite: the compositor alone on every frame (decoded frames held in memory beforehand);
* lip-sync + compositor: plan and composite together, per frame;
* full render: ``render_lipsync`` (decode, composite, x264 veryfast encode), per frame.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import TESTDATA, scaled_clip

from lipdub.backends.lipsync.retrieval import RetrievalBackend
from lipdub.faces.analyze import analyze_video, iter_frames
from lipdub.lipsync.compositor import Compositor
from lipdub.lipsync.render import collect_donors, render_lipsync
from lipdub.media.probe import decode_audio, probe, video_frame_times


def spanish_line(n_samples: int, duration_s: float):
    """A Spanish espeak-ng line at the rate that fills ``duration_s``: 16 kHz audio and its phonemes."""
    from lipdub.audio import resample
    from lipdub.backends.tts.espeak import EspeakTts
    from lipdub.languages import parse_language

    text = "Buenos días a todos, hoy vamos a hablar de un viaje muy bonito por el norte de España."
    tts, es = EspeakTts(), parse_language("es")
    rate = float(np.clip(tts.synthesize(text, es).duration_s / duration_s, 0.5, 2.5))
    speech = tts.synthesize(text, es, rate=rate)
    dub = resample(speech.samples, speech.sample_rate_hz, 16000)[:n_samples]
    return np.pad(dub, (0, n_samples - len(dub))), [(p.start_s, p.end_s, p.phoneme) for p in speech.phonemes]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=200)
    args = ap.parse_args()
    src = TESTDATA / "th_latentsync_demo2_video.mp4"
    print(f"cores: {os.cpu_count()}  clip: {src.name}, first {args.frames} frames, one face")
    print(f"{'size':<12}{'plan fps':>10}{'composite fps':>15}{'lipsync+comp fps':>18}{'full render fps':>17}")
    with tempfile.TemporaryDirectory() as tmp:
        for w, h in ((720, 1280), (1080, 1920)):
            clip = Path(tmp) / f"{h}p.mp4"
            scaled_clip(src, clip, w, h, args.frames, crf=18, audio=True)
            analysis = analyze_video(clip)
            track = max(analysis.tracks, key=lambda t: len(t.frames))
            times = video_frame_times(clip)
            _, audio = decode_audio(clip, probe(clip))
            frames = track.frames[track.skip == 0].astype(np.int64)
            t0 = time.perf_counter()
            dub, phonemes = spanish_line(len(audio), float(times[-1]))
            plan = RetrievalBackend().plan(analysis, track, frames, times, audio, dub, 16000, phonemes)
            assert plan.details["driver"] == "visemes"
            plan_s = time.perf_counter() - t0
            donors = collect_donors(clip, [(plan, track)])
            decoded = {i: rgb for i, rgb in iter_frames(clip)}
            comp = Compositor()
            t0 = time.perf_counter()
            for k, f in enumerate(plan.frames):
                d_rgb, d_lm = donors[(track.id, int(plan.source_frames[k]))].as_frame(decoded[int(f)])
                comp.composite(decoded[int(f)], track.landmarks[track.index_of(int(f))], d_rgb, d_lm, key=track.id, donor_is_frame=True)
            comp_s = time.perf_counter() - t0
            n = len(plan.frames)
            t0 = time.perf_counter()
            render_lipsync(clip, analysis, [(plan, track)], Path(tmp) / f"out{h}.mp4")
            full_s = time.perf_counter() - t0 + plan_s
            print(f"{f'{w}x{h}':<12}{n / plan_s:>10.1f}{n / comp_s:>15.1f}{n / (plan_s + comp_s):>18.1f}{analysis.frame_count / full_s:>17.1f}")
            del decoded


if __name__ == "__main__":
    main()
