"""Whole-dub intelligibility, voice similarity and fit of the espeak-ng path against the new default (issue 14).

    .venv/bin/python bench/dub_intelligibility.py [CLIP ...] [--to es] [--variants espeak-ng,default] [--lipsync none]

Default clips: th2_retalking_face1, th_retalking_face5, th_voxceleb_pcavs_00086 and the audio-only
sp_en_2spk_pyannote_sample (issue 14's "done when" set). Each is dubbed in a fresh temporary
project, per variant:

* ``espeak-ng``: the path before issue 14: ``--tts espeak-ng`` (Praat voice matching, its default),
  no hearing loop (``--no-check-intelligibility``);
* ``default``: the defaults (``--tts auto``: kokoro with a voice adapted per speaker, the hearing loop);
* ``search=N``: the defaults with ``--voice-search N``;
* any other ``NAME`` is passed as ``--tts NAME``.

``--lipsync none`` unless asked (the soundtrack does not depend on it); the source is English (``--from en``: Whisper once took th_voxceleb_pcavs_00086 for Welsh). Each speaker's voice profile
(and so the adapted voice and the Praat target) is made from the first half of their speech only
(``--held-out``, default on: ``lipdub.voice.profile.select_reference`` is replaced for the run), so
that the similarity is measured on speech the voice was not adapted to. Printed per dub:

* WER: the dub's dialogue stem (``NAME.stems/dialogue.wav``) transcribed by faster-whisper base
  forced to the target language, against the dub's own subtitles (``NAME.srt``); p: Whisper's
  unforced language identification on the stem (probability of the target language, and what it detected);
* fit: share of lines whose effective speed-up is within their limit and that do not overrun (the
  report's ``fit_share``); lines heard / re-synthesized / flagged by the hearing loop;
* per speaker: resemblyzer cosine between the speaker's held-out source speech (source dialogue
  stem) and their dubbed lines (dub dialogue stem), :func:`lipdub.qc.voice.speaker_similarity`;
* seconds of the dub: wall clock, CPU (user + system, this process and its children) and the load
  average at the start (other jobs share the cores: compare CPU seconds when the load is high).

``--keep DIR`` keeps each dub (output and project) in ``DIR/<clip>-<variant>`` for a look per line.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import srt
from _common import TESTDATA

from lipdub.audio import read_audio, resample
from lipdub.config import DubConfig
from lipdub.layout import ProjectLayout as L
from lipdub.media.probe import probe
from lipdub.pipeline import dub
from lipdub.qc.intelligibility import hear_line, load_whisper
from lipdub.qc.voice import speaker_similarity
from lipdub.script import Script
from lipdub.voice import profile as profile_module

CLIPS = ["th2_retalking_face1.mp4", "th_retalking_face5.mp4", "th_voxceleb_pcavs_00086.mp4", "sp_en_2spk_pyannote_sample.wav"]
_select_reference = profile_module.select_reference


def first_half(own, others, target_s=profile_module.REFERENCE_TARGET_S):
    """The reference spans: the first half (by duration) of the speaker's clean speech, cut inside a span if need be."""
    spans = sorted(_select_reference(own, others, target_s=1e9))
    half = sum(b - a for a, b in spans) / 2
    out, used = [], 0.0
    for a, b in spans:
        if used >= half:
            break
        end = min(b, a + half - used)
        out.append((a, end))
        used += end - a
    return out


def held_out(own: list[tuple[float, float]], ref: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """``own`` spans minus the reference spans."""
    out = []
    for a, b in own:
        cuts = sorted((max(a, c), min(b, d)) for c, d in ref if min(b, d) > max(a, c))
        t = a
        for c, d in cuts:
            if c > t:
                out.append((t, c))
            t = max(t, d)
        if b > t:
            out.append((t, b))
    return [(a, b) for a, b in out if b - a > 0.05]


def cpu_s() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def variant_config(variant: str, clip: Path, out: Path, to: str, lipsync: str) -> DubConfig:
    if variant == "espeak-ng":
        extra = {"tts": "espeak-ng", "check_intelligibility": False}
    elif variant.startswith("search="):
        extra = {"voice_search": int(variant.split("=", 1)[1])}
    else:
        extra = {} if variant == "default" else {"tts": variant}
    return DubConfig(input=clip, targets=[to], output=out, lipsync=lipsync if clip.suffix != ".wav" else "none", source_language="en", **extra)


def similarities(project: Path, script: Script, to: str) -> dict[str, float | None]:
    src, sr = read_audio(project / L.DIALOGUE_48K, mono=True)
    dub_audio, dsr = read_audio(project / L.stem(to, "dialogue"), mono=True)
    src_spans, dub_spans = {}, {}
    for f in sorted((project / L.VOICES_DIR).glob("*.json")):
        prof = json.loads(f.read_text())
        own = [(s.start_s, s.end_s) for s in script.segments if s.speaker == prof["speaker"]]
        src_spans[prof["speaker"]] = held_out(own, [tuple(x) for x in prof.get("reference_spans_s") or []])
    for s in script.segments:
        t = s.targets.get(to)
        if t is not None and t.fit is not None:
            dub_spans.setdefault(s.speaker, []).append((t.fit.placed_start_s, t.fit.placed_end_s))
    figs = speaker_similarity(resample(src, sr, 16000), resample(dub_audio, dsr, 16000), src_spans, dub_spans)
    return {f.speaker: f.similarity for f in figs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="*", default=[str(TESTDATA / c) for c in CLIPS])
    ap.add_argument("--to", default="es")
    ap.add_argument("--variants", default="espeak-ng,default")
    ap.add_argument("--lipsync", default="none")
    ap.add_argument("--held-out", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--keep", type=Path, default=None, help="keep each dub's output in KEEP/<clip>-<variant> (default: a temporary folder)")
    args = ap.parse_args()
    if args.held_out:
        profile_module.select_reference = first_half
    whisper = load_whisper("base")
    print(f"{'clip':30} {'variant':10} {'WER':>5} {'p':>5} {'det':>4} {'fit':>5} {'heard/re/flag':>13} {'wall s':>7} {'cpu s':>7} "
          f"{'load':>5}  similarity per speaker (held-out)")
    for clip in (Path(c) for c in args.clips):
        media_s = probe(clip).duration_s
        for variant in args.variants.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                out = (args.keep / f"{clip.stem}-{variant.replace('=', '')}") if args.keep else Path(tmp) / "out"
                cfg = variant_config(variant, clip, out, args.to, args.lipsync)
                load = os.getloadavg()[0]
                t0, c0 = time.monotonic(), cpu_s()
                result = dub(cfg)
                wall, cpu = time.monotonic() - t0, cpu_s() - c0
                name = f"{clip.stem}.{args.to}"
                subs = list(srt.parse((out / f"{name}.srt").read_text(encoding="utf-8")))
                text = " ".join(s.content.replace("\n", " ") for s in subs)
                x, sr = read_audio(out / f"{name}.stems" / "dialogue.wav", mono=True)
                heard = hear_line(whisper, x, sr, args.to)
                report = json.loads((out / f"{name}.report.json").read_text())
                script = Script.load(result.project_dir / L.SCRIPT)
                fits = [s.targets[args.to].fit for s in script.segments if args.to in s.targets and s.targets[args.to].fit]
                h = (sum(f.hearing is not None for f in fits), sum(any(a.remedy for a in f.history) for f in fits),
                     sum(bool(f.hearing and f.hearing.flagged) for f in fits))
                sims = similarities(result.project_dir, script, args.to)
                print(f"{clip.name:30} {variant:10} {heard.wer(text):5.2f} {heard.expected_probability:5.2f} {heard.detected_language:>4} "
                      f"{report['timing']['fit_share']:5.2f} {'/'.join(map(str, h)):>13} {wall:7.1f} {cpu:7.1f} {load:5.1f}  "
                      + ", ".join(f"{k} {v:.3f}" if v is not None else f"{k} -" for k, v in sims.items())
                      + f"   (RTF wall {wall / media_s:.2f}, cpu {cpu / media_s:.2f})")
                print(f"{'':30} heard: {heard.text[:110]}")


if __name__ == "__main__":
    main()
