"""Diarization error rate of the silero VAD + resemblyzer diarizer on the pyannote sample.

Usage: ``python bench/der.py [TESTDATA_DIR]`` (default ``$LIPDUB_TESTDATA`` or ``../shared/testdata``).

Prints the DER (pyannote.metrics ``DiarizationErrorRate``: (false alarm + missed detection +
speaker confusion) / total reference speech, optimal speaker mapping; collar 0 and 0.25 s,
overlap not skipped) of ``sp_en_2spk_pyannote_sample.wav`` against its ``.rttm``, with the
speaker count estimated and given (2), and the estimated number of speakers.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from _common import TESTDATA
from pyannote.core import Annotation, Segment
from pyannote.metrics.diarization import DiarizationErrorRate

from lipdub.audio import read_audio
from lipdub.backends.diarize.resemblyzer import ResemblyzerDiarizer
from lipdub.backends.vad.silero import SileroVad

CLIP = "sp_en_2spk_pyannote_sample"


def load_rttm(path: Path) -> Annotation:
    """Reference turns from an RTTM file (fields: type file chan start dur _ _ speaker ...)."""
    ref = Annotation(uri=CLIP)
    for line in path.read_text().splitlines():
        f = line.split()
        if f and f[0] == "SPEAKER":
            start, dur = float(f[3]), float(f[4])
            ref[Segment(start, start + dur)] = f[7]
    return ref


def main() -> None:
    testdata = Path(sys.argv[1]) if len(sys.argv) > 1 else TESTDATA
    audio, sr = read_audio(testdata / f"{CLIP}.wav", mono=True)
    reference = load_rttm(testdata / f"{CLIP}.rttm")
    t0 = time.perf_counter()
    regions = SileroVad().detect(audio, sr)
    t_vad = time.perf_counter() - t0
    diarizer = ResemblyzerDiarizer()
    for label, num in (("auto", None), ("given=2", 2)):
        t0 = time.perf_counter()
        turns = diarizer.diarize(audio, sr, regions, num_speakers=num)
        t_dia = time.perf_counter() - t0
        hyp = Annotation(uri=CLIP)
        for turn in turns:
            hyp[Segment(turn.start_s, turn.end_s)] = turn.speaker
        n_est = len({t.speaker for t in turns})
        ders = []
        for collar in (0.0, 0.25):
            metric = DiarizationErrorRate(collar=collar, skip_overlap=False)
            ders.append(metric(reference, hyp, uem=Segment(0.0, len(audio) / sr)))
        print(
            f"{label:8s} speakers={n_est}  DER(collar 0)={ders[0]:.3f}  DER(collar 0.25 s)={ders[1]:.3f}  "
            f"turns={len(turns)}  vad {t_vad:.2f} s, diarize {t_dia:.2f} s for {len(audio) / sr:.1f} s audio"
        )


if __name__ == "__main__":
    main()
