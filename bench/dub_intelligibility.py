"""Whole-dub intelligibility: the dub's dialogue stem heard back by Whisper base, per TTS backend (issue 14).

    .venv/bin/python bench/dub_intelligibility.py [CLIP ...] [--to es] [--tts espeak-ng,kokoro] [--lipsync none]

Default clips: th2_retalking_face1, th_retalking_face5, th_voxceleb_pcavs_00086 and the audio-only
sp_en_2spk_pyannote_sample (issue 14's "done when" set). Each is dubbed with the defaults except
``--tts`` (and ``--lipsync none`` unless asked, the soundtrack does not depend on it), in a fresh
temporary project. The dub's dialogue stem (``NAME.stems/dialogue.wav``) is transcribed by
faster-whisper base forced to the target language and compared with the dub's own subtitles
(``NAME.srt``, the target text at the dubbed timing); Whisper's unforced language identification on
the stem gives the probability of the target language. Also printed: the dub's wall time over the
media duration (RTF of the whole run). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import srt
from _common import TESTDATA

from lipdub.audio import read_audio
from lipdub.config import DubConfig
from lipdub.media.probe import probe
from lipdub.pipeline import dub
from lipdub.qc.intelligibility import hear_line, load_whisper

CLIPS = ["th2_retalking_face1.mp4", "th_retalking_face5.mp4", "th_voxceleb_pcavs_00086.mp4", "sp_en_2spk_pyannote_sample.wav"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs="*", default=[str(TESTDATA / c) for c in CLIPS])
    ap.add_argument("--to", default="es")
    ap.add_argument("--tts", default="espeak-ng,kokoro")
    ap.add_argument("--lipsync", default="none")
    args = ap.parse_args()
    whisper = load_whisper("base")
    print(f"{'clip':32} {'tts':10} {'WER':>5} {'p(' + args.to + ')':>6} {'detected':>8} {'RTF':>5}  heard")
    for clip in (Path(c) for c in args.clips):
        media_s = probe(clip).duration_s
        for tts in args.tts.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "out"
                cfg = DubConfig(input=clip, targets=[args.to], output=out, tts=tts,
                                lipsync=args.lipsync if clip.suffix != ".wav" else "none")
                t0 = time.monotonic()
                dub(cfg)
                rtf = (time.monotonic() - t0) / media_s
                name = f"{clip.stem}.{args.to}"
                subs = list(srt.parse((out / f"{name}.srt").read_text(encoding="utf-8")))
                text = " ".join(s.content.replace("\n", " ") for s in subs)
                x, sr = read_audio(out / f"{name}.stems" / "dialogue.wav", mono=True)
                heard = hear_line(whisper, x, sr, args.to)
                print(f"{clip.name:32} {tts:10} {heard.wer(text):5.2f} {heard.expected_probability:6.2f} "
                      f"{heard.detected_language:>8} {rtf:5.2f}  {heard.text[:70]}")


if __name__ == "__main__":
    main()
