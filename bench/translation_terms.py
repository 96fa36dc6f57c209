"""Names, glossary terms, apertium marks and sentences across lines on real transcripts, apertium eng-spa.

For each English clip: the transcript (the pyannote sample's reference .stm; Whisper ``base`` for the
others), translated line by line by plain apertium (as the translate stage did before
lipdub.translation) and through :class:`lipdub.translation.LineTranslator` (names kept, sentences
across lines joined, marks removed). Prints, per clip, the names found, how many of their
occurrences survive in each translation, lines joined, and apertium marks left (raw apertium run
without ``-u`` for "before"), then every line whose translation changed.

    PYTHONPATH=src python bench/translation_terms.py [--glossary terms.csv]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import TESTDATA  # noqa: E402

from lipdub.contracts.translate import TRANSLATORS, TranslationRequest  # noqa: E402
from lipdub.languages import parse_language  # noqa: E402
from lipdub.translation import Glossary, LineTranslator, SourceLine, detect_names  # noqa: E402
from lipdub.translation.terms import contains  # noqa: E402

CLIPS = ["th2_retalking_face1.mp4", "th_retalking_face5.mp4", "sp_en_jfk.flac", "th_latentsync_demo1_audio.wav",
         "th_latentsync_demo2_audio.wav", "pr_voxceleb_pcavs_00015.mp4", "th_voxceleb_pcavs_00086.mp4"]
MARKS = re.compile(r"[*#@]\w")


def stm_lines(path: Path) -> list[SourceLine]:
    out = []
    for row in path.read_text(encoding="utf-8").splitlines():
        _, _, speaker, start, end, text = row.split(None, 5)
        out.append(SourceLine(text.strip(), float(end) - float(start), speaker, float(start), float(end)))
    return out


def whisper_lines(path: Path) -> list[SourceLine]:
    from faster_whisper import WhisperModel

    from lipdub.models import resolve_whisper_model

    model = WhisperModel(str(resolve_whisper_model("base")), device="cpu", compute_type="int8", cpu_threads=2)
    segments, info = model.transcribe(str(path), language="en", beam_size=5, vad_filter=False)
    return [SourceLine(s.text.strip(), s.end - s.start, None, s.start, s.end) for s in segments if s.text.strip()]


def raw_apertium(texts: list[str]) -> list[str]:
    """apertium eng-spa without -u, one run per line (for the marks it leaves)."""
    return [subprocess.run(["apertium", "eng-spa"], input=t + "\n", capture_output=True, text=True, check=True).stdout.strip() for t in texts]


def measure(name: str, lines: list[SourceLine], apertium, glossary: Glossary | None) -> dict:
    en, es = parse_language("en"), parse_language("es")
    fixed = {" ".join(e.source.split()).casefold() for e in (glossary.for_target(es) if glossary else [])}
    names = [n for n in detect_names([l.text for l in lines], en) if n.casefold() not in fixed]  # the glossary decides those
    plain = apertium.translate([TranslationRequest(l.text) for l in lines], en, es)
    records = LineTranslator(apertium, en, es, glossary=glossary, names=names).translate_lines(lines)
    raw = raw_apertium([l.text for l in lines])
    occ = [(i, n) for i, l in enumerate(lines) for n in names if contains(l.text, n)]
    groups = {tuple(r.group) for r in records if len(r.group) > 1}
    row = {
        "clip": name, "lines": len(lines), "names": names, "name occurrences": len(occ),
        "kept plain": sum(contains(plain[i], n) for i, n in occ),
        "kept lipdub": sum(contains(records[i].text, n) for i, n in occ),
        "glossary hits": sum(len(r.glossary_hits) for r in records),
        "joined groups": len(groups), "marks raw": sum(len(MARKS.findall(t)) for t in raw),
        "marks lipdub": sum(len(MARKS.findall(r.text)) for r in records),
    }
    print(f"\n== {name}: {row}")
    for l, p, r in zip(lines, plain, records):
        if p != r.text:
            print(f"  {l.text!r}\n    plain : {p!r}\n    lipdub: {r.text!r}  (group {r.group})")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--glossary", type=Path, default=None)
    args = ap.parse_args()
    glossary = Glossary.load(args.glossary) if args.glossary else None
    apertium = TRANSLATORS.create("apertium")
    rows = [measure("sp_en_2spk_pyannote_sample.stm", stm_lines(TESTDATA / "sp_en_2spk_pyannote_sample.stm"), apertium, glossary)]
    for clip in CLIPS:
        if (TESTDATA / clip).is_file():
            rows.append(measure(clip, whisper_lines(TESTDATA / clip), apertium, glossary))
    print("\nclip | lines | name occurrences | kept plain | kept lipdub | joined | marks raw | marks lipdub")
    for r in rows:
        print(f"{r['clip']} | {r['lines']} | {r['name occurrences']} | {r['kept plain']} | {r['kept lipdub']} | "
              f"{r['joined groups']} | {r['marks raw']} | {r['marks lipdub']}")


if __name__ == "__main__":
    main()
