"""Speaker similarity of the dubbed voices, with and without voice matching (issue 6).

    .venv/bin/python bench/voice_similarity.py [CLIP] [--to es] [--tts espeak-ng] [--speakers 2] [--project DIR]

CLIP defaults to sp_en_2spk_pyannote_sample.wav (two women on a telephone line; the automatic
speaker count finds one there, so ``--speakers 2`` is the default). The audio-only dub runs twice
in the same project, with ``--voice-match`` and ``--no-voice-match`` (only the synthesize stage and
what follows are redone). For each source speaker it prints the resemblyzer cosine between the
speaker's profile embedding (their own clean reference speech) and the embedding of all their dubbed
lines joined, both ways; and the cosine between the two dubbed voices (lower = more distinct) and
each dubbed voice's nearest source speaker. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from _common import TESTDATA

from lipdub.audio import read_audio, resample
from lipdub.config import DubConfig
from lipdub.pipeline import dub
from lipdub.script import Script
from lipdub.voice.profile import cosine, embed_speech
from lipdub.voice.profiles import load_profiles


def dubbed_embeddings(project: Path, lang: str) -> dict[str, np.ndarray]:
    """Speaker id -> d-vector of all their dubbed lines (fitted WAVs) joined with 0.1 s gaps."""
    script = Script.load(project / "script.json")
    parts: dict[str, list[np.ndarray]] = {}
    for seg in script.segments:
        t = seg.targets.get(lang)
        if t is None or t.fit is None or not t.fit.audio_path:
            continue
        x, sr = read_audio(project / t.fit.audio_path, mono=True)
        parts.setdefault(seg.speaker, []).extend([resample(x, sr, 16000), np.zeros(1600, np.float32)])
    return {spk: embed_speech(np.concatenate(p)) for spk, p in parts.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clip", nargs="?", default=str(TESTDATA / "sp_en_2spk_pyannote_sample.wav"))
    ap.add_argument("--to", default="es")
    ap.add_argument("--tts", default="espeak-ng")
    ap.add_argument("--speakers", type=int, default=2)
    ap.add_argument("--project", default=None, help="project directory to use (default: a temporary one)")
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="lipdub-voices-"))
    project = Path(args.project) if args.project else out / "project"
    results = {}
    for match in (False, True):
        cfg = DubConfig(input=Path(args.clip), targets=[args.to], output=out / f"dub_{'match' if match else 'plain'}.wav",
                        project_dir=project, tts=args.tts, speakers=args.speakers, lipsync="none", voice_match=match)
        dub(cfg)
        results[match] = dubbed_embeddings(project, args.to)
    profiles = load_profiles(project)
    script = Script.load(project / "script.json")
    voices = {}
    for seg in script.segments:
        if args.to in seg.targets and seg.targets[args.to].fit:
            voices[seg.speaker] = seg.targets[args.to].fit.voice
    print(f"clip {Path(args.clip).name} -> {args.to}, tts {args.tts}, speakers {sorted(profiles)}")
    print(f"{'speaker':12} {'F0 med Hz':>9} {'register':>8} {'base voice':>10} {'sim plain':>9} {'sim matched':>11}")
    for spk, prof in sorted(profiles.items()):
        src = prof.embedding_array()
        plain, matched = (cosine(src, results[m][spk]) if spk in results[m] else float("nan") for m in (False, True))
        print(f"{spk:12} {prof.f0_median_hz:9.1f} {prof.voice_register:>8} {voices.get(spk) or '-':>10} {plain:9.3f} {matched:11.3f}")
    spks = sorted(profiles)
    if len(spks) >= 2:
        for m in (False, True):
            a, b = results[m][spks[0]], results[m][spks[1]]
            label = "matched" if m else "plain"
            nearest = {s: max(spks, key=lambda k: cosine(results[m][s], profiles[k].embedding_array())) for s in spks[:2]}
            print(f"{label:8}: cosine between the two dubbed voices {cosine(a, b):.3f}; nearest source speaker of each dubbed voice: {nearest}")
        print(f"source: cosine between the two speakers' own references {cosine(profiles[spks[0]].embedding_array(), profiles[spks[1]].embedding_array()):.3f}")


if __name__ == "__main__":
    main()
