"""Stage 4: resemblyzer diarization on real conversations and single speakers."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from lipdub.audio import read_audio, resample
from lipdub.errors import ConfigError

PYANNOTE = "sp_en_2spk_pyannote_sample"
# Measured (bench/der.py): DER 0.186 at collar 0 with 2 speakers given. The bound leaves ~60 %
# margin for library/version jitter while still failing a diarizer that confuses speakers or
# misses much speech (a one-speaker answer scores 0.51).
DER_BOUND = 0.30


@pytest.fixture(scope="module")
def vad():
    from lipdub.backends.vad.silero import SileroVad

    return SileroVad()


@pytest.fixture(scope="module")
def diarizer():
    from lipdub.contracts.diarize import DIARIZERS

    return DIARIZERS.create("resemblyzer")


@pytest.fixture(scope="module")
def pyannote_clip(testdata, vad):
    audio, sr = sf.read(testdata / f"{PYANNOTE}.wav", dtype="float32")
    return audio, sr, vad.detect(audio, sr)


def _load16(path) -> np.ndarray:
    audio, sr = read_audio(path, mono=True)
    return resample(audio, sr, 16000)


def _check_turns(turns, regions) -> None:
    assert turns == sorted(turns, key=lambda t: (t.start_s, t.end_s))
    for t in turns:
        assert t.end_s > t.start_s
        assert any(r.start_s - 1e-6 <= t.start_s and t.end_s <= r.end_s + 1e-6 for r in regions)
    seen: list[str] = []
    for t in turns:
        if t.speaker not in seen:
            seen.append(t.speaker)
    assert seen == [f"SPEAKER_{i:02d}" for i in range(len(seen))]


def _der(testdata, turns, duration_s: float, collar: float) -> float:
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    ref = Annotation()
    for line in (testdata / f"{PYANNOTE}.rttm").read_text().splitlines():
        f = line.split()
        ref[Segment(float(f[3]), float(f[3]) + float(f[4]))] = f[7]
    hyp = Annotation()
    for t in turns:
        hyp[Segment(t.start_s, t.end_s)] = t.speaker
    return DiarizationErrorRate(collar=collar, skip_overlap=False)(ref, hyp, uem=Segment(0, duration_s))


def test_two_speakers_given(testdata, diarizer, pyannote_clip):
    audio, sr, regions = pyannote_clip
    turns = diarizer.diarize(audio, sr, regions, num_speakers=2)
    _check_turns(turns, regions)
    assert {t.speaker for t in turns} == {"SPEAKER_00", "SPEAKER_01"}
    assert _der(testdata, turns, len(audio) / sr, collar=0.0) < DER_BOUND


@pytest.mark.xfail(
    strict=True,
    reason="known limitation: two similar female voices on one telephone channel; the best 2-way split "
    "is no further apart (cosine 0.11) than splits of one speaker's windows (up to 0.20), so the "
    "automatic count says 1. Pass num_speakers (--speakers 2).",
)
def test_two_speakers_automatic_on_telephone_sample(diarizer, pyannote_clip):
    audio, sr, regions = pyannote_clip
    assert len({t.speaker for t in diarizer.diarize(audio, sr, regions)}) == 2


def test_two_different_voices_counted_automatically(testdata, diarizer, vad):
    first = _load16(testdata / "th_latentsync_demo1_audio.wav")
    second = _load16(testdata / "sp_en_jfk.flac")
    audio = np.concatenate([first, second])
    junction_s = len(first) / 16000
    regions = vad.detect(audio, 16000)
    turns = diarizer.diarize(audio, 16000, regions)
    _check_turns(turns, regions)
    assert len({t.speaker for t in turns}) == 2
    # speech before the junction is SPEAKER_00, after it SPEAKER_01 (allowing 0.5 s slack)
    for t in turns:
        if t.end_s < junction_s - 0.5:
            assert t.speaker == "SPEAKER_00"
        if t.start_s > junction_s + 0.5:
            assert t.speaker == "SPEAKER_01"


def test_single_speaker(testdata, diarizer, vad):
    audio = _load16(testdata / "sp_en_jfk.flac")
    regions = vad.detect(audio, 16000)
    turns = diarizer.diarize(audio, 16000, regions)
    _check_turns(turns, regions)
    assert {t.speaker for t in turns} == {"SPEAKER_00"}
    covered = sum(t.end_s - t.start_s for t in turns)
    assert covered == pytest.approx(sum(r.end_s - r.start_s for r in regions), abs=0.05)


def test_speaker_count_is_honoured(diarizer, pyannote_clip):
    audio, sr, regions = pyannote_clip
    assert len({t.speaker for t in diarizer.diarize(audio, sr, regions, num_speakers=3)}) == 3
    assert len({t.speaker for t in diarizer.diarize(audio, sr, regions, num_speakers=1)}) == 1
    with pytest.raises(ConfigError):
        diarizer.diarize(audio, sr, regions, num_speakers=0)


def test_no_speech_gives_no_turns(diarizer):
    assert diarizer.diarize(np.zeros(16000, dtype=np.float32), 16000, []) == []


def test_a_short_second_speaker_is_counted(testdata, tmp_path, vad, diarizer):
    """Two people taking 2.5 s turns (the side-by-side talking heads of issue 18's two-speaker
    test): the automatic count finds both, the change at the turn boundary. Counting a cluster's
    speech by window hops (3 windows = 1.5 s for a 2.1 s turn) merged the second one away."""
    from media_fixtures import hstack_two_speakers

    from lipdub.media.probe import decode_audio, probe

    clip = hstack_two_speakers(testdata / "th_retalking_face5.mp4", testdata / "th_voxceleb_pcavs_00086.mp4",
                               tmp_path / "two.mp4", turn_s=2.5)
    _, audio = decode_audio(clip, probe(clip))
    regions = vad.detect(audio, 16000)
    turns = diarizer.diarize(audio, 16000, regions)
    _check_turns(turns, regions)
    assert len({t.speaker for t in turns}) == 2
    first = {t.speaker for t in turns if (t.start_s + t.end_s) / 2 < 2.5}
    second = {t.speaker for t in turns if (t.start_s + t.end_s) / 2 > 2.5}
    assert first == {"SPEAKER_00"} and second == {"SPEAKER_01"}
    change_s = min(t.start_s for t in turns if t.speaker == "SPEAKER_01")
    assert abs(change_s - 2.5) < 0.5
