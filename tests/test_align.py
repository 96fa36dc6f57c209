"""Phoneme alignment of known text (lipdub.lipsync.align): espeak-ng G2P + DTW against the audio.

Two checks: on speech whose phoneme timing is known (espeak-ng with another voice and rate, word
timestamps blurred as an ASR gives them) the aligned phoneme starts are within a few tens of ms and
beat spreading each word's phonemes evenly; on the real talking heads (faster-whisper words), the
aligned p/b/m fall on closed mouths and the open vowels on open ones, and a shifted alignment does not.
"""

from __future__ import annotations

import numpy as np
import pytest

SR = 16000


@pytest.mark.parametrize("code,text,voice,rate", [
    ("es", "Mi mayor debilidad es pedir ayuda cuando la necesito", "es+f3", 1.3),
    ("en", "my biggest weakness is asking for help when I need it", "en+m7", 0.8),
    ("fr", "nous partons demain matin pour la mer", "fr+f2", 1.15),
])
def test_alignment_recovers_known_phoneme_times(espeak, code, text, voice, rate):
    from lipdub.audio import resample
    from lipdub.languages import parse_language
    from lipdub.lipsync.align import TextChunk, align_chunk

    lang = parse_language(code)
    truth = espeak.synthesize(text, lang, voice=voice, rate=rate)
    lead_s = 0.4
    audio = np.concatenate([np.zeros(int(lead_s * SR), np.float32), resample(truth.samples, truth.sample_rate_hz, SR),
                            np.zeros(int(0.3 * SR), np.float32)])
    true_ph = truth.phonemes
    counts = [len(espeak.synthesize(w, lang).phonemes) for w in text.split()]
    if sum(counts) != len(true_ph):
        pytest.skip("espeak-ng reads the words differently alone and in the sentence")
    edges = np.cumsum([0] + counts)
    rng = np.random.default_rng(0)
    words = [(true_ph[a].start_s + lead_s + rng.normal(0, 0.06), true_ph[b - 1].end_s + lead_s + rng.normal(0, 0.06), w)
             for a, b, w in zip(edges[:-1], edges[1:], text.split())]
    res = align_chunk(audio, SR, TextChunk(words[0][0], words[-1][1], text, words), lang)
    assert len(res.phonemes) == len(true_ph)  # the same phonemes (espeak may pick another allophone alone)
    err = np.abs([p.start_s - lead_s - q.start_s for p, q in zip(res.phonemes, true_ph)])
    # baseline: each word's phonemes spread evenly over its (blurred) timestamps
    even = np.concatenate([np.linspace(w[0], w[1], b - a, endpoint=False) for (a, b), w in zip(zip(edges[:-1], edges[1:]), words)])
    err_even = np.abs(even - lead_s - np.array([q.start_s for q in true_ph]))
    print(f"{code}: median |error| {np.median(err) * 1000:.0f} ms (90th pct {np.quantile(err, 0.9) * 1000:.0f}), "
          f"even split {np.median(err_even) * 1000:.0f} ms; DTW cost {res.mean_cost:.2f}")
    assert np.median(err) < 0.025 and np.median(err) < 0.5 * np.median(err_even)
    assert all(b.start_s >= a.start_s for a, b in zip(res.phonemes, res.phonemes[1:]))


@pytest.fixture(scope="module")
def talking_heads(testdata):
    """name -> (face track, frame times, 16 kHz audio, transcript) for the clips whose audio is the face's."""
    pytest.importorskip("mediapipe")
    from lipdub.backends.transcribe.faster_whisper import FasterWhisperTranscriber
    from lipdub.faces.analyze import analyze_video
    from lipdub.media.probe import decode_audio, probe, video_frame_times

    asr = FasterWhisperTranscriber(model="base")
    out = {}
    for name in ("th2_retalking_face1.mp4", "th_retalking_face5.mp4"):
        path = testdata / name
        _, audio = decode_audio(path, probe(path))
        out[name] = (analyze_video(path).tracks[0], video_frame_times(path), audio, asr.transcribe(audio, SR, "en"))
    return out


def _mouth_at(track, times, phonemes, shift_s, kind):
    """Mouth opening (measured landmarks) over each bilabial (min) / open vowel (max) span."""
    from lipdub.faces.tracking import mouth_opening
    from lipdub.lipsync.visemes import is_bilabial, is_open_vowel

    t = times[track.frames]
    op = mouth_opening(track.landmarks_raw)
    test = is_bilabial if kind == "closed" else (lambda p: is_open_vowel(p) or p in ("aɪ", "aʊ", "ɑː", "ɔː"))
    out = []
    for p in phonemes:
        if test(p.phoneme):
            sel = (t >= p.start_s + shift_s - 0.02) & (t < p.end_s + shift_s + 0.02)
            if sel.any():
                out.append(op[sel].min() if kind == "closed" else op[sel].max())
    return np.array(out)


@pytest.mark.parametrize("name", ["th2_retalking_face1.mp4", "th_retalking_face5.mp4"])
def test_aligned_bilabials_fall_on_closed_mouths(talking_heads, name):
    from lipdub.lipsync.align import align_segments

    track, times, audio, transcript = talking_heads[name]
    al = align_segments(audio, SR, transcript.segments, "en")
    assert al.chunks >= 1 and len(al.phonemes) > 20
    closed, opened = _mouth_at(track, times, al.phonemes, 0.0, "closed"), _mouth_at(track, times, al.phonemes, 0.0, "open")
    late_c, late_o = _mouth_at(track, times, al.phonemes, 0.3, "closed"), _mouth_at(track, times, al.phonemes, 0.3, "open")
    print(f"{name}: {len(al.phonemes)} phonemes, {al.summary()}; opening (IOD) at p/b/m {np.round(closed, 3)}, "
          f"at open vowels {np.round(opened, 3)}; 0.3 s late: {np.round(late_c, 3)} / {np.round(late_o, 3)}")
    assert len(closed) >= 2 and len(opened) >= 3
    separation = np.median(opened) - np.median(closed)
    assert np.median(closed) < 0.5 * np.median(opened)
    assert separation > 0.03 and separation > 2 * (np.median(late_o) - np.median(late_c))


def test_chunks_from_script_segments_split_at_long_pauses():
    from lipdub.lipsync.align import chunks_from_segments
    from lipdub.script import Segment, Word

    words = [Word(start_s=0.0, end_s=0.3, text="hola"), Word(start_s=0.35, end_s=0.7, text="amigo"),
             Word(start_s=1.6, end_s=2.0, text="adiós")]
    seg = Segment(id=0, start_s=0.0, end_s=2.0, speaker="S1", source_text="hola amigo adiós", words=words)
    bare = Segment(id=1, start_s=3.0, end_s=4.0, speaker="S1", source_text="sin palabras")
    chunks = chunks_from_segments([seg, bare])
    assert [(c.start_s, c.end_s, c.text) for c in chunks] == [(0.0, 0.7, "hola amigo"), (1.6, 2.0, "adiós"), (3.0, 4.0, "sin palabras")]
    assert len(chunks[0].words) == 2 and chunks[2].words == []


def test_align_text_without_word_times(espeak):
    from lipdub.audio import resample
    from lipdub.languages import parse_language
    from lipdub.lipsync.align import align_text

    es = parse_language("es")
    truth = espeak.synthesize("pedir ayuda cuando la necesito", es, voice="es+m3", rate=1.2)
    audio = np.concatenate([np.zeros(int(0.2 * SR), np.float32), resample(truth.samples, truth.sample_rate_hz, SR)])
    got = align_text(audio, SR, "pedir ayuda cuando la necesito", es, start_s=0.2)
    assert len(got) == len(truth.phonemes)
    err = np.abs([g.start_s - 0.2 - t.start_s for g, t in zip(got, truth.phonemes)])
    print(f"align_text: median |error| {np.median(err) * 1000:.0f} ms")
    assert np.median(err) < 0.03
