"""Intelligibility helpers: text normalization, word error rate, one line heard back by Whisper."""

from __future__ import annotations

import numpy as np
import pytest

from lipdub.qc.intelligibility import normalize_words, word_error_rate

JFK = "And so, my fellow Americans: ask not what your country can do for you, ask what you can do for your country."


def test_normalize_words():
    assert normalize_words("¡Hola, José! Tengo 23 años.", "es") == ["hola", "jose", "tengo", "veintitres", "anos"]
    assert normalize_words("L'homme a quatre-vingt-dix ans.", "fr") == ["l", "homme", "a", "quatre", "vingt", "dix", "ans"]
    assert normalize_words("90", "fr") == ["quatre", "vingt", "dix"]
    assert normalize_words("こんにちは、世界。", "ja") == list("こんにちは世界")
    assert normalize_words("ガイド", "ja") == ["ガ", "イ", "ド"]  # dakuten kept


def test_word_error_rate():
    assert word_error_rate("Tengo veintitrés años.", "tengo 23 años", "es") == 0.0
    assert word_error_rate("el perro come pan", "el gato come", "es") == pytest.approx(0.5)  # 1 sub + 1 del
    assert word_error_rate("a b", "a b c d", "en") == pytest.approx(1.0)  # 2 insertions
    assert word_error_rate("...", "", "es") == 0.0
    assert word_error_rate("...", "algo", "es") == 1.0
    assert word_error_rate("hola", "", "es") == 1.0
    assert word_error_rate("今日は晴れ", "今日は雨", "ja") == pytest.approx(0.4)  # characters: 1 sub + 1 del of 5


def test_hear_line_on_real_speech(testdata):
    from lipdub.audio import read_audio
    from lipdub.errors import MissingWeights
    from lipdub.qc.intelligibility import hear_line, load_whisper

    try:
        model = load_whisper("base")
    except MissingWeights as exc:
        pytest.skip(str(exc))
    x, sr = read_audio(testdata / "sp_en_jfk.flac", mono=True)
    heard = hear_line(model, x, sr, "en", word_timestamps=True)
    assert heard.wer(JFK) <= 0.1, heard.text
    assert heard.detected_language == "en" and heard.detected_probability > 0.9
    assert heard.words and all(a <= b for a, b, _ in heard.words)
    assert heard.words[-1][1] <= 11.5
    # forced to another language, the transcript no longer matches
    assert hear_line(model, x, sr, "de").expected_probability < 0.1


def test_context_timeline_keeps_lines_where_they_are_placed():
    """Lines keep their own gaps and overlaps (summed, as the mix does); only gaps over the limit shrink."""
    import numpy as np

    from lipdub.qc.intelligibility import WHISPER_RATE_HZ, _context_timeline

    sr = WHISPER_RATE_HZ
    a, b, c = (np.full(sr, v, np.float32) for v in (0.1, 0.2, 0.4))  # 1 s each
    # b starts 0.5 s into a (overlap), c 6 s after b ends (shortened to 2 s); a at 10 s (lead shortened to 2 s)
    audio, spans = _context_timeline([(10.0, a), (10.5, b), (17.5, c)], max_gap_s=2.0)
    assert spans == [(2.0, 3.0), (2.5, 3.5), (5.5, 6.5)]
    assert audio[int(2.7 * sr)] == np.float32(0.1) + np.float32(0.2)  # summed where they overlap
    assert audio[int(3.2 * sr)] == np.float32(0.2) and audio[int(4.5 * sr)] == 0.0 and audio[int(6.0 * sr)] == np.float32(0.4)
    # a short lead and gap stay as they are; order of the list is kept in the spans
    _, spans = _context_timeline([(1.5, c), (0.5, a)], max_gap_s=2.0)
    assert spans == [(1.5, 2.5), (0.5, 1.5)]


def _jfk_cut_at_ask(testdata, rate_hz: int):
    """``(Whisper base, JFK's sentence float32 mono at rate_hz, cut_s, cut sample)``: the cut at the start
    of "ask", as Whisper's word timestamps give it ("... Americans: | ask not ..."); skipped without the model."""
    from lipdub.audio import read_audio, resample
    from lipdub.errors import MissingWeights
    from lipdub.qc.intelligibility import hear_line, load_whisper

    try:
        model = load_whisper("base")
    except MissingWeights as exc:
        pytest.skip(str(exc))
    x, sr = read_audio(testdata / "sp_en_jfk.flac", mono=True)
    x = resample(x, sr, rate_hz)
    whole = hear_line(model, x, rate_hz, "en", word_timestamps=True)
    cut_s = next(a for a, _, w in whole.words if w.strip(",.:").lower() == "ask")
    return model, x, cut_s, int(cut_s * rate_hz)


def test_hear_in_context_gives_each_line_its_words(testdata):
    """JFK's sentence cut in two at a word boundary and placed back on its timeline: each half gets its
    own words, the context lines none, and the two halves together read the whole sentence."""
    from lipdub.qc.intelligibility import hear_in_context

    model, x, cut_s, k = _jfk_cut_at_ask(testdata, 16000)
    first, second = hear_in_context(model, [(0.0, x[:k]), (cut_s, x[k:])], 16000, "en")
    assert "americans" in first.text.lower() and "ask" not in first.text.lower()
    assert second.text.lower().lstrip().startswith("ask") and "americans" not in second.text.lower()
    assert word_error_rate(JFK, f"{first.text} {second.text}", "en") <= 0.1
    assert hear_in_context(model, [(0.0, x[:k]), (cut_s, x[k:])], 16000, "en", scored=[1])[0] is None


def test_the_hearing_check_hears_what_the_mix_plays(testdata):
    """The synthesize stage's check hears a line where the mix puts it: a line heard right alone is
    misheard (and so re-synthesized) when a louder line is placed over it, as the viewer would hear it."""
    from types import SimpleNamespace

    from lipdub.pipeline.hearing import Candidate, Hearing
    from lipdub.pipeline.stages.synthesize import _hear_pending
    from lipdub.qc.intelligibility import hear_lines
    from lipdub.qc.thresholds import Thresholds
    from lipdub.script import Segment
    from lipdub.timing.isochrony import LineFit

    model, x, cut_s, k = _jfk_cut_at_ask(testdata, 48000)
    first, second = x[:k], np.clip(4.0 * x[k:], -1.0, 1.0)
    text = "And so, my fellow Americans:"

    def cand(start_s, samples):
        fitted = SimpleNamespace(placed_start_s=start_s, samples=samples, stretch_ratio=1.0)
        return Candidate(LineFit(fitted=fitted, text=text, tts_rate=1.0, speedup_limit=1.25, natural_speed=1.0), None, wer=0.0)

    hearing = Hearing(model, "base", "en", Thresholds().line_wer.pass_at)
    alone = hear_lines(model, [first], 48000, "en")[0]
    assert alone.wer(text) <= hearing.threshold, alone.text
    end_s = len(x) / 48000
    one = [Segment(id=0, start_s=0.0, end_s=cut_s, speaker="A", source_text=text), Segment(id=1, start_s=cut_s, end_s=end_s, speaker="A", source_text="x")]
    apart = _hear_pending(hearing, [[cand(0.0, first)], [cand(cut_s, second)]], [0], [], one)[0]  # as placed: one after the other
    assert apart.wer(text) <= hearing.threshold, apart.text
    # two speakers at once in the source (crosstalk): the louder line stays over it, as the mix plays it
    two = [one[0], Segment(id=1, start_s=0.2, end_s=end_s, speaker="B", source_text="x")]
    over = _hear_pending(hearing, [[cand(0.0, first)], [cand(0.2, second)]], [0], [], two)[0]
    assert over.wer(text) > hearing.threshold, over.text
    # one speaker whose next line a fit placed over the first: it is heard delayed, as the mix will play it
    rippled = _hear_pending(hearing, [[cand(0.0, first)], [cand(0.2, second)]], [0], [], one)[0]
    assert rippled.wer(text) <= hearing.threshold, rippled.text


def test_lines_are_heard_at_the_level_given(testdata):
    """What the hearing check hears is set to the loudness asked (the dub's, not the TTS's own level)."""
    from lipdub.audio import read_audio
    from lipdub.mixing import integrated_loudness
    from lipdub.qc.intelligibility import at_loudness

    x, sr = read_audio(testdata / "sp_en_jfk.flac", mono=True)
    for target in (-27.0, -18.0):
        y = at_loudness(x.astype(np.float32), sr, target)
        assert y.dtype == np.float32 and integrated_loudness(y, sr) == pytest.approx(target, abs=0.05)
    short = x[: sr // 10].astype(np.float32)  # 100 ms: no BS.1770 loudness, left as it is
    assert np.array_equal(at_loudness(short, sr, -27.0), short)


def test_a_dub_with_no_lines_is_flagged_not_judged_on_silence():
    """A transcript without words (mf_facenet_crowd: Whisper heard only ".") gives a dub with no lines:
    the report warns about it and does not judge the silence's WER or language."""
    from lipdub.qc.intelligibility_report import intelligibility_section
    from lipdub.qc.thresholds import Thresholds
    from lipdub.script import Script, Segment, Speaker, TargetLine

    silence = np.zeros(16000 * 3, np.float32)
    empty = Script(source_language="en", speakers=[Speaker(id="A", name="A")],
                   segments=[Segment(id=0, start_s=0.0, end_s=1.0, speaker="A", source_text=".", targets={"es": TargetLine(text=" ")})])
    data, checks = intelligibility_section(empty, "es", silence, None, Thresholds())
    assert [(c.name, c.verdict) for c in checks] == [("dub_lines", "warn")]
    assert "dub_wer" not in data and "no lines" in data["dub_note"]
    # a dub with a line is judged on its dialogue stem: the same silence now fails the whole-dub WER
    pytest.importorskip("faster_whisper")
    from lipdub.errors import MissingWeights
    from lipdub.qc.intelligibility import load_whisper

    try:
        model = load_whisper("base")
    except MissingWeights as exc:
        pytest.skip(str(exc))
    one = empty.model_copy(deep=True)
    one.segments[0].targets["es"] = TargetLine(text="Hola a todos.")
    data, checks = intelligibility_section(one, "es", silence, model, Thresholds())
    v = {c.name: c.verdict for c in checks}
    assert "dub_lines" not in v and v["dub_wer"] == "fail" and data["dub_wer"] > 0.5
