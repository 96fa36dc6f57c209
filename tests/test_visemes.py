"""Viseme inventory and coarticulation (lipdub.lipsync.visemes): every phoneme espeak-ng emits for the
supported languages is mapped, the classes are the articulatory ones, dominance functions blend
neighbours, stop closures are found before the burst."""

from __future__ import annotations

import numpy as np
import pytest

from lipdub.lipsync.visemes import (
    AA,
    PP,
    VISEME_BY_NAME,
    VISEMES,
    closure_intervals,
    coarticulate,
    frame_visemes,
    is_bilabial,
    is_open_vowel,
    phoneme_visemes,
    stop_closure_starts,
    viseme_distance,
    viseme_segments,
)

#: Sample text per language: everyday sentences plus words for the rarer sounds of each.
SAMPLES = {
    "es": "Mi mayor debilidad es pedir ayuda cuando la necesito. El perro de Juan bebe vino y agua; chico, llave, "
          "año, haber, zapato, guitarra, jamón, yegua, hielo. ¿Qué tal? Cinco euros.",
    "en": "My biggest weakness is asking for help when I need it. The thin church judge measured the azure boy's "
          "hour of vision; thought, cure, hair, near, bird, lot, strut, bath, goat, choice, mouth, sing.",
    "fr": "Ma plus grande faiblesse est de demander de l'aide. Un bon vin blanc, je suis heureux, la rue, le feu, "
          "oignon, huit, fille, cœur, brun, parking, château, gageure.",
    "de": "Meine größte Schwäche ist, um Hilfe zu bitten. Zwölf Boxkämpfer jagen Viktor quer über den großen "
          "Sylter Deich; ich, ach, Pfeffer, Zoo, Bäume, Häuser, Junge, Chemie, Tschüss, Dschungel.",
    "it": "La mia più grande debolezza è chiedere aiuto. Gli gnocchi, la zia, sciare, giorno, pizza, famiglia, "
          "zero, cuore, ghiaccio, quattro, uovo, buongiorno.",
    "pt": "A minha maior fraqueza é pedir ajuda. Não, mãe, filho, linha, coração, chuva, rato, carro, pão, "
          "bem, muito, cidade, avó, avô, jeito, homem.",
}


@pytest.fixture(scope="module")
def espeak():
    from lipdub.backends.tts.espeak import EspeakTts
    from lipdub.errors import BackendUnavailable

    try:
        EspeakTts.check()
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    return EspeakTts()


@pytest.mark.parametrize("code", sorted(SAMPLES))
def test_every_espeak_phoneme_is_mapped(espeak, code):
    from lipdub.languages import parse_language

    speech = espeak.synthesize(SAMPLES[code], parse_language(code))
    emitted = sorted({p.phoneme for p in speech.phonemes})
    unmapped = [p for p in emitted if phoneme_visemes(p) is None]
    print(f"{code}: {len(emitted)} phonemes: {' '.join(emitted)}")
    assert len(emitted) >= 20
    assert not unmapped, f"{code}: espeak-ng phonemes outside the viseme inventory: {unmapped}"
    seg = viseme_segments(speech.phonemes)
    assert not seg.unknown and len(seg) >= len(speech.phonemes)
    # each language uses most of the inventory (a map sending everything to one class would not)
    assert len(set(seg.viseme.tolist())) >= 11


def test_classes_follow_articulation():
    name = lambda p: [VISEMES[v].name for v in phoneme_visemes(p)]  # noqa: E731
    assert name("m") == name("ˈb") == name("p") == ["PP"]
    assert name("f") == name("v") == ["FF"] and name("θ") == ["TH"]
    assert name("tʃ") == name("t͡ʃ") == name("ʃ") == ["CH"]  # affricates stay one
    assert name("aɪ") == ["aa", "ih"] and name("ɐ̃ʊ̃") == ["aa", "ou"] and name("pf") == ["PP", "FF"]
    assert name("y") == name("u") == name("w") == ["ou"]  # rounding decides what the eye sees
    assert name("ø") == name("o") == ["oh"] and name("a-") == name("ɑ̃") == name("ˈaː") == ["aa"]
    assert name("ɾ") == ["DD"] and name("ɹ") == ["RR"] and name("ʁ") == ["kk"]
    assert phoneme_visemes("_") == (0,) and phoneme_visemes("AA1") is None and phoneme_visemes("☃") is None
    assert all(is_bilabial(p) for p in ["p", "b", "m", "ˈp", "pʰ", "mʲ", "bː", "M", "EM", "m̩"])
    assert not any(is_bilabial(p) for p in ["f", "β", "n", "a", "ɸ", "w", ""])
    assert all(is_open_vowel(p) for p in ["a", "ˈa", "ɑː", "a-", "ɐ", "æ", "ɑ̃"])
    assert not any(is_open_vowel(p) for p in ["aɪ", "e", "o", "i", "m"])
    d = viseme_distance()
    assert np.allclose(d, d.T) and (np.diag(d) == 0).all()
    assert d[PP, AA] == 1.0 and d[VISEME_BY_NAME["oh"].id, VISEME_BY_NAME["ou"].id] < d[VISEME_BY_NAME["oh"].id, VISEME_BY_NAME["ih"].id]


def test_dominance_blends_neighbours_and_lips_dominate():
    # "s u m a": the rounding of /u/ reaches back into /s/ (anticipation: it grows towards the /u/),
    # holds inside the /u/, and gives way to the lip closure of /m/
    seg = viseme_segments([(0.0, 0.10, "s"), (0.10, 0.25, "u"), (0.25, 0.30, "m"), (0.30, 0.45, "a")])
    targets = np.zeros((len(VISEMES), 1))
    targets[VISEME_BY_NAME["ou"].id] = 1.0
    t = np.array([0.02, 0.085, 0.095, 0.18, 0.275, 0.40])
    traj, weight = coarticulate(seg, t, targets)
    u = traj[:, 0]
    assert (weight > 0).all()
    assert u[0] < 0.3 and u[0] < u[1] < u[2] < u[3] and u[3] > 0.95
    assert u[4] < 0.3  # mid-/m/: its own lip closure dominates
    assert frame_visemes(t, seg).tolist() == [7, 14, 14, 14, PP, AA]  # /u/ already dominates the end of /s/


def test_stop_closures_start_at_the_silence_before_the_burst(espeak):
    from lipdub.languages import parse_language

    speech = espeak.synthesize("mamá papá", parse_language("es"))
    seg = viseme_segments(speech.phonemes)
    moved = stop_closure_starts(seg, speech.samples, speech.sample_rate_hz)
    p = np.flatnonzero(seg.plosive)
    assert len(p) == 2 and (moved.start_s[p] < seg.start_s[p] - 0.015).all() and (moved.start_s[p] >= seg.start_s[p] - 0.1).all()
    others = np.setdiff1d(np.arange(len(seg)), p)
    np.testing.assert_array_equal(moved.start_s[others], seg.start_s[others])
    # the closure before each burst is silent in the audio
    x = speech.samples
    for k in p:
        a, b = int(moved.start_s[k] * speech.sample_rate_hz), int(seg.start_s[k] * speech.sample_rate_hz)
        assert np.sqrt(np.mean(x[a:b] ** 2)) < 0.01 * np.sqrt(np.mean(x ** 2))
    spans = closure_intervals(moved)
    assert len(spans) == 4 and all(b - a >= 0.08 - 1e-9 for a, b in spans)
