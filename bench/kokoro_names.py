"""Kept names read with the source language's pronunciation in Kokoro lines: Whisper WER per line (issue 14).

    PYTHONPATH=src .venv/bin/python bench/kokoro_names.py PROJECT.lipdub [--to es] [--voice VOICE]

Takes a dubbed project (its script.json: the source lines, their ``--to`` translations, and the voice each
line was last spoken with, else ``--voice`` / ``jm_kumo``), finds the names the translation kept
(:func:`lipdub.translation.detect_names` over the source lines), and speaks every target line holding one
twice with Kokoro at rate 1.0: names by the target's letter-to-sound rules, then by the source language's
espeak-ng voice (``names=`` / ``names_language=``). Each is heard by faster-whisper base forced to the
target language (:func:`lipdub.qc.intelligibility.hear_line`); prints per line the WER and transcript of
both, and the mean. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lipdub.backends.tts.kokoro import KokoroTts
from lipdub.backends.tts.kokoro_g2p import foreign_spans
from lipdub.languages import parse_language
from lipdub.qc.intelligibility import hear_line, load_whisper
from lipdub.translation import detect_names


def main() -> None:
    """Print the per-line WER with and without source-language names (module docstring)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("project", type=Path)
    ap.add_argument("--to", default="es")
    ap.add_argument("--voice", default=None)
    args = ap.parse_args()
    script = json.loads((args.project / "script.json").read_text())
    source, target = parse_language(script.get("source_language") or "en"), parse_language(args.to)
    segs = script["segments"]
    names = detect_names([s["source_text"] for s in segs], source)
    print("names:", names)
    tts = KokoroTts(voice_dir=args.project / "voices" / target.code)
    whisper = load_whisper("base")
    totals = [0.0, 0.0]
    rows = 0
    for s in segs:
        t = s["targets"].get(target.code)
        if not t or not t.get("text"):
            continue
        found = [p for p, is_name in foreign_spans(t["text"], names) if is_name]
        if not found:
            continue
        voice = args.voice or ((t.get("fit") or {}).get("voice")) or None
        out = []
        for kw in ({}, {"names": found, "names_language": source}):
            sp = tts.synthesize(t["text"], target, voice=voice, **kw)
            h = hear_line(whisper, sp.samples, sp.sample_rate_hz, target.code)
            out.append((h.wer(t["text"]), h.text))
        totals[0] += out[0][0]
        totals[1] += out[1][0]
        rows += 1
        print(f"{s['id']:3d} {voice}: {t['text']!r} names={found}\n    target rules {out[0][0]:.2f} {out[0][1]!r}\n"
              f"    source rules {out[1][0]:.2f} {out[1][1]!r}")
    if rows:
        print(f"mean WER over {rows} lines: target rules {totals[0] / rows:.3f}, source rules {totals[1] / rows:.3f}")


if __name__ == "__main__":
    main()
