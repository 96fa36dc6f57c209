"""Kokoro synthesis and Whisper hearing time against their intra-op thread count (the choice of
:func:`lipdub.runtime.available_threads`), on an idle machine and beside a busy process.

    .venv/bin/python bench/model_threads.py [--threads 1,2] [--repeats 3] [--language es]

For each thread count a fresh process (``$LIPDUB_THREADS``) loads the Kokoro session, speaks one
warm-up line, then the voice search's sentence (``kokoro_bank.SEARCH_TEXTS``) ``--repeats`` times with
the jm_kumo pack; then it loads Whisper base (``qc.intelligibility.load_whisper``) and hears that
speech (forced to the language, beam 5) ``--repeats`` times. Printed: wall and CPU seconds of each,
then two syntheses side by side in two Python threads on one session (1 thread only), then
everything again while a busy-loop process holds one core (the video branch's case), with the CPU
seconds the busy process got over all the runs (model loading included). Also printed: whether the
audio and the heard text of 1 and N threads are the same. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

_CHILD = r"""
import json, sys, threading, time
import numpy as np
from lipdub.backends.tts.kokoro_bank import SEARCH_TEXTS, Scorer
from lipdub.backends.tts.kokoro_model import stock_packs
from lipdub.contracts.synthesize import TTS_BACKENDS
from lipdub.languages import parse_language
lang, repeats, pair = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
sc = Scorer(TTS_BACKENDS.create("kokoro"), parse_language(lang))
style = stock_packs()["jm_kumo"]
sc.speech(style, "Hola a todos.")
text = SEARCH_TEXTS[lang]
t, c = time.perf_counter(), time.process_time()
for _ in range(repeats):
    s = sc.speech(style, text)
out = {"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c,
       "speech_s": len(s.samples) / s.sample_rate_hz, "audio": np.asarray(s.samples, dtype=np.float32).tobytes().hex()}
if pair:
    t = time.perf_counter()
    ths = [threading.Thread(target=sc.speech, args=(style, text)) for _ in range(2)]
    [x.start() for x in ths]; [x.join() for x in ths]
    out["pair_wall_s"] = time.perf_counter() - t
from lipdub.qc.intelligibility import hear_line, load_whisper
whisper = load_whisper("base")
hear_line(whisper, s.samples[: s.sample_rate_hz], s.sample_rate_hz, lang)
t, c = time.perf_counter(), time.process_time()
for _ in range(repeats):
    heard = hear_line(whisper, s.samples, s.sample_rate_hz, lang)
out.update({"hear_wall_s": time.perf_counter() - t, "hear_cpu_s": time.process_time() - c, "heard": heard.text})
print("RESULT " + json.dumps(out))
"""

_BUSY = "import time\nt=time.process_time()\nwhile time.process_time()-t<600: pass\n"


def run(threads: int, repeats: int, language: str, pair: bool) -> dict:
    env = dict(os.environ, LIPDUB_THREADS=str(threads))
    p = subprocess.run([sys.executable, "-c", _CHILD, language, str(repeats), "1" if pair else "0"],
                       env=env, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"the {threads}-thread run failed:\n{p.stderr[-3000:]}")
    line = next(x for x in p.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[7:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--language", default="es")
    args = ap.parse_args()
    counts = [int(x) for x in args.threads.split(",")]
    print(f"cores: {len(os.sched_getaffinity(0))}  load average (1 min): {os.getloadavg()[0]:.2f}")
    for busy in (False, True):
        hog = subprocess.Popen([sys.executable, "-c", _BUSY]) if busy else None
        t0 = time.monotonic()
        try:
            audio, heard = {}, {}
            for n in counts:
                r = run(n, args.repeats, args.language, pair=(n == 1))
                audio[n], heard[n] = r.pop("audio"), r["heard"]
                extra = f"  two side by side (1 thread each): {r['pair_wall_s']:.2f} s" if "pair_wall_s" in r else ""
                print(f"{'busy core' if busy else 'idle'}  threads {n}: {args.repeats} x {r['speech_s']:.2f} s of speech "
                      f"in {r['wall_s']:.2f} s wall, {r['cpu_s']:.2f} s CPU (RTF {r['wall_s'] / (args.repeats * r['speech_s']):.3f}){extra}")
                print(f"{'':11}Whisper base hearing it {args.repeats} times: {r['hear_wall_s']:.2f} s wall, "
                      f"{r['hear_cpu_s']:.2f} s CPU: {r['heard']!r}")
        finally:
            if hog is not None:
                with open(f"/proc/{hog.pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                hog_cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                hog.kill()
                hog.wait()
                print(f"busy process beside them: {hog_cpu_s:.1f} s CPU in {time.monotonic() - t0:.1f} s wall")
        print("audio identical to", counts[0], "thread(s):", {n: audio[n] == audio[counts[0]] for n in counts[1:]},
              " heard text identical:", {n: heard[n] == heard[counts[0]] for n in counts[1:]})


if __name__ == "__main__":
    main()
