"""How many syntheses the Kokoro voice search should make: held-out similarity gained against seconds spent.

    .venv/bin/python bench/voice_search_budget.py [--language es] [--evaluations 0,4,8,12,18] [--clips 2spk,th2,face5,vox86]

The speakers of bench/kokoro_voices.py (the two of sp_en_2spk_pyannote_sample, th2_retalking_face1,
th_retalking_face5, th_voxceleb_pcavs_00086): the first half of each speaker's speech makes the profile
and reference clip, the rest is held out. For each search budget (``evaluations``, 0 = the nearest pack)
the speakers of a clip are adapted together (lipdub.backends.tts.kokoro_voice.adapt_voices, without a
Whisper check, as the pipeline's voices stage; ``--whisper-check`` adds it), then each voice speaks two
sentences neither the search nor its check uses; printed: the resemblyzer cosine of those sentences to
the held-out source speech, Whisper base's WER on them, and the wall and CPU seconds the adaptation
took per speaker with the load average (pack measurements excluded: they are made once per process
and language, and printed separately). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import TESTDATA  # noqa: F401  (sets up the test clips' location)
from kokoro_voices import TEXTS, clip_audio, held_out_profiles, speak

from lipdub.backends.tts import kokoro_bank, kokoro_voice
from lipdub.backends.tts.kokoro_model import stock_packs
from lipdub.contracts.synthesize import TTS_BACKENDS
from lipdub.languages import parse_language
from lipdub.qc.intelligibility import load_whisper
from lipdub.runtime import apply_thread_policy


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--language", default="es")
    ap.add_argument("--evaluations", default="0,4,8,12,18")
    ap.add_argument("--clips", default="2spk,th2,face5,vox86")
    ap.add_argument("--whisper-check", action="store_true", help="Whisper checks the candidates (the pipeline does not)")
    args = ap.parse_args()
    apply_thread_policy()  # as the pipeline: one thread per model
    lang, texts = parse_language(args.language), TEXTS[args.language]
    budgets = [int(b) for b in args.evaluations.split(",")]
    whisper = load_whisper("base")
    kokoro = TTS_BACKENDS.create("kokoro")
    t0 = time.perf_counter()
    kokoro_bank.pack_measures(kokoro_bank.Scorer(kokoro, lang), stock_packs(), lang.code)
    print(f"load average {os.getloadavg()[0]:.1f}; pack measurements (once per process and language): {time.perf_counter() - t0:.1f} s")
    print(f"{'speaker':16} {'evals':>5} {'start':>14} {'sim held-out':>12} {'WER':>5} {'wall s':>7} {'cpu s':>6} {'load':>5}  source")
    totals: dict[int, list[float]] = {b: [] for b in budgets}
    for clip in args.clips.split(","):
        x16, spans = clip_audio(clip)
        for b in budgets:
            vdir = Path(tempfile.mkdtemp(prefix=f"lipdub-budget-{clip}-{b}-"))
            profiles, held = held_out_profiles(x16, spans, vdir)
            load, t0, c0 = os.getloadavg()[0], time.perf_counter(), cpu_s()
            voices = kokoro_voice.adapt_voices(profiles, vdir, lang, whisper=whisper if b > 0 and args.whisper_check else None,
                                               evaluations=b, tts=kokoro)
            secs, cpu = (time.perf_counter() - t0) / len(voices), (cpu_s() - c0) / len(voices)
            for spk, prof in profiles.items():
                v = voices[spk]
                sim, wer, _ = speak(kokoro, texts, lang, str(vdir / v.voice_id), prof, whisper, held[spk], False)
                totals[b].append(sim)
                print(f"{clip + ':' + spk:16} {b:5d} {v.start_pack:>14} {sim:12.3f} {wer:5.2f} {secs:7.1f} {cpu:6.1f} {load:5.1f}  {v.source}")
    print("mean held-out similarity per budget: " + ", ".join(f"{b}: {np.mean(s):.3f}" for b, s in totals.items()))


if __name__ == "__main__":
    main()
