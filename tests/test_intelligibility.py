"""Intelligibility helpers: text normalization, word error rate, one line heard back by Whisper."""

from __future__ import annotations

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
