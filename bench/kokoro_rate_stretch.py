"""Kokoro's own speed against a time-stretch at the same speed-up, heard back by Whisper (issue 14).

    .venv/bin/python bench/kokoro_rate_stretch.py PROJECT_DIR [PROJECT_DIR ...] [--speedups 1.0,1.2,1.35,1.5]
                                                  [--caps 1.0,1.1,1.2,2.0] [--sentences] [--language es]

A line that does not fit its slot is sped up by ``e`` = TTS rate x time-stretch ratio. Which share
should the TTS take? For each line of each project (the target text of every segment of its
``script.json``, spoken with its speaker's adapted voice, ``voices/<lang>/<speaker>.kokoro-<lang>.npy``,
and with that voice's fallback pack), and with ``--sentences`` the sentences of
``bench/tts_intelligibility.py`` with jm_kumo, every speed-up ``e`` is made with the Kokoro rate capped
at each of ``--caps`` (rate = min(e, cap), rubberband ``--fine`` takes ``e / rate``; cap 2.0 is all
Kokoro rate) and heard by faster-whisper base forced to the language (the lines of one condition in
shared windows, as the synthesize stage hears them: ``lipdub.qc.intelligibility.hear_lines``).

Printed per group of lines (a project, or the sentences) and cap: the mean line WER and the share
of lines above the ``line_wer`` pass limit (0.25), per speed-up and over all of them. Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tts_intelligibility import SENTENCES

from lipdub.contracts.synthesize import TTS_BACKENDS
from lipdub.languages import parse_language
from lipdub.layout import ProjectLayout as L
from lipdub.qc.intelligibility import hear_lines, load_whisper
from lipdub.qc.thresholds import Thresholds
from lipdub.timing.fit import time_stretch, trim_silence


def project_lines(project: Path, code: str) -> list[tuple[str, str, str]]:
    """``(text, voice, voice_dir)`` per dubbed line of ``project``: its speaker's adapted voice and fallback pack."""
    script = json.loads((project / L.SCRIPT).read_text())
    vdir = project / L.adapted_voices_dir(code)
    record = json.loads((vdir / "voices.json").read_text()) if (vdir / "voices.json").exists() else {}
    out = []
    for seg in script["segments"]:
        t = seg["targets"].get(code)
        if not t or not t["text"].strip():
            continue
        own = vdir / f"{seg['speaker']}.kokoro-{code}.npy"
        if own.exists():
            out.append((t["text"], own.name, str(vdir)))
        fallback = (record.get("voices", {}).get(seg["speaker"]) or {}).get("fallback_voice")
        if fallback:
            out.append((t["text"], fallback, str(vdir)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("projects", nargs="*", type=Path)
    ap.add_argument("--language", default="es")
    ap.add_argument("--speedups", default="1.0,1.2,1.35,1.5")
    ap.add_argument("--caps", default="1.0,1.1,1.2,2.0")
    ap.add_argument("--sentences", action="store_true", help="also the sentences of bench/tts_intelligibility.py, with jm_kumo")
    args = ap.parse_args()
    code, lang = args.language, parse_language(args.language)
    speedups = [float(x) for x in args.speedups.split(",")]
    caps = [float(x) for x in args.caps.split(",")]
    groups = {p.name: project_lines(p, code) for p in args.projects}
    if args.sentences:
        groups["sentences"] = [(s, "jm_kumo", "") for s in SENTENCES[code]]
    whisper = load_whisper("base")
    tts: dict[str, object] = {}
    limit = Thresholds().line_wer.pass_at
    made: dict[tuple, tuple[np.ndarray, int]] = {}

    def speech(text: str, voice: str, vdir: str, rate: float) -> tuple[np.ndarray, int]:
        key = (text, voice, vdir, round(rate, 4))
        if key not in made:
            if vdir not in tts:
                tts[vdir] = TTS_BACKENDS.create("kokoro", **({"voice_dir": vdir} if vdir else {}))
            s = tts[vdir].synthesize(text, lang, voice=voice, rate=rate)
            made[key] = (trim_silence(np.asarray(s.samples, np.float32), s.sample_rate_hz)[0], s.sample_rate_hz)
        return made[key]

    print(f"{'group':34} {'lines':>5} {'cap':>4}  " + "  ".join(f"e={e:<4g} WER  >lim" for e in speedups) + "   all WER  >lim")
    for name, lines in groups.items():
        heard_at: dict[tuple, list[float]] = {}  # (rate, stretch) -> WER per line
        for cap in caps:
            row, every = [], []
            for e in speedups:
                rate = min(e, cap)
                key = (round(rate, 4), round(e / rate, 4))
                if key not in heard_at:
                    clips, sr = [], 24000
                    for text, voice, vdir in lines:
                        x, sr = speech(text, voice, vdir, rate)
                        clips.append(time_stretch(x, sr, e / rate) if e / rate > 1.001 else x)
                    heard_at[key] = [h.wer(t) for h, (t, _, _) in zip(hear_lines(whisper, clips, sr, code), lines)]
                wers = heard_at[key]
                every += wers
                row.append(f"{np.mean(wers):9.2f} {np.mean([w > limit for w in wers]):5.2f}")
            print(f"{name[:34]:34} {len(lines):5d} {cap:4.2f}  " + "  ".join(row) + f"   {np.mean(every):7.2f} {np.mean([w > limit for w in every]):5.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
