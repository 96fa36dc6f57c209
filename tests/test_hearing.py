"""The pieces of the intelligibility loop and of the one effective speed-up, without models: phrase split
and join, the diagnosis of a misheard line and the order of the remedies it gets, the word pause, the
lower speed down to the backend's slowest rate, which version of a line is kept, the natural speed of a voice,
the voice-match default per backend, the line windows of a batch, and the report's timing checks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from lipdub.contracts.synthesize import PhonemeTiming, Speech
from lipdub.errors import ConfigError
from lipdub.pipeline.hearing import (MOSTLY_HEARD_REMEDIES, REMEDIES, Candidate, best_candidate, diagnose, join_speech, lower_rate,
                                     has_room, next_remedy, slowest_rate, split_phrases, word_pause_text)
from lipdub.qc.intelligibility import _owner, _windows, multilingual
from lipdub.script import FitReport, effective_speedup
from lipdub.voice.params import NATURAL_SYLLABLES_PER_S, natural_speed


def _line(text="Hola, qué tal. Bien.", rate=1.0, stretch=1.0, natural=1.0, limit=1.25):
    fitted = SimpleNamespace(stretch_ratio=stretch)
    from lipdub.timing.isochrony import LineFit

    return LineFit(fitted=fitted, text=text, tts_rate=rate, speedup_limit=limit, natural_speed=natural)


def test_split_and_join_phrases():
    assert split_phrases("Hola, ¿qué tal? Bien: gracias.") == ["Hola,", "¿qué tal?", "Bien:", "gracias."]
    assert split_phrases("una sola frase") == ["una sola frase"]
    a = Speech(np.ones(100, np.float32), 1000, [PhonemeTiming(0.01, 0.05, "o")])
    b = Speech(np.ones(50, np.float32), 1000, [PhonemeTiming(0.0, 0.02, "a")])
    j = join_speech([a, b], pause_s=0.2)
    assert j.samples.size == 100 + 200 + 50 and j.sample_rate_hz == 1000
    assert [(p.start_s, p.phoneme) for p in j.phonemes] == [(0.01, "o"), (0.3, "a")]
    assert join_speech([a, Speech(np.ones(5, np.float32), 1000)]).phonemes is None
    with pytest.raises(ConfigError):
        join_speech([a, Speech(np.ones(5, np.float32), 2000)])


def test_remedies_in_order_and_only_where_they_apply():
    c = Candidate(_line(rate=1.4), voice="adapted.npy")
    assert next_remedy(c, "jm_kumo") == "other voice"
    assert next_remedy(c, None) == "phrase split"  # a voice a person chose: no other voice
    c2 = Candidate(_line(rate=1.4), voice="jm_kumo", remedies=("other voice",))
    assert next_remedy(c2, "jm_kumo") == "phrase split"
    c3 = Candidate(_line(text="sin comas", rate=1.4), voice="jm_kumo", remedies=("other voice",))
    assert next_remedy(c3, "jm_kumo") == "lower speed"
    c4 = Candidate(_line(text="sin comas", rate=1.0), voice="x", remedies=("other voice",))
    assert next_remedy(c4, "jm_kumo") is None  # already at rate 1.0: nothing left, the line is flagged


def test_diagnosis_mostly_heard_or_garbled():
    d = diagnose("Dijo que aquel control remoto", "dijo que a que el control remoto", "es")
    assert (d.kind, d.words, d.heard_right, d.misheard) == ("mostly heard", 5, 4, (2,))  # one word misheard
    assert 'misheard: "aquel"' in d.describe("Dijo que aquel control remoto")
    assert diagnose("¿Qué tal, Ana?", "que tal ana", "es").misheard == ()  # case, accents, punctuation: all heard
    g = diagnose("Dijo que aquel control remoto", "the quick brown", "es")
    assert (g.kind, g.heard_right) == ("garbled", 0) and g.misheard == (0, 1, 2, 3, 4)
    assert diagnose("uno dos tres", "uno", "es").kind == "garbled"  # one word of three
    assert diagnose("aquel control", "a que el control", "es").kind == "mostly heard"  # half of them
    assert diagnose("hola", "", "es").kind == "garbled" and diagnose("", "algo", "es").kind == "garbled"
    assert diagnose("Tengo 3 gatos", "tengo tres patos", "es").misheard == (2,)  # numbers compare spelled out


def test_remedy_order_follows_the_diagnosis():
    text = "Dijo que aquel control, remoto"
    mostly, garbled = diagnose(text, "dijo que a que el control remoto", "es"), diagnose(text, "nada", "es")
    c = Candidate(_line(text=text, rate=1.0), voice="adapted.npy")
    assert next_remedy(c, "jm_kumo", mostly, min_rate=0.5) == "lower speed" == MOSTLY_HEARD_REMEDIES[0]
    assert next_remedy(c, "jm_kumo", garbled, min_rate=0.5) == "other voice" == REMEDIES[0]  # the old order
    tried = []
    while (r := next_remedy(c, "jm_kumo", mostly, min_rate=0.5)) is not None:
        tried.append(r)
        c = Candidate(c.line, "jm_kumo" if r == "other voice" else c.voice, (*c.remedies, r))
    assert tried == ["lower speed", "word pause", "other voice", "phrase split"]
    c = Candidate(_line(text=text, rate=1.0), voice="adapted.npy")
    assert next_remedy(c, "jm_kumo", garbled, min_rate=1.0) == "other voice"
    c = Candidate(c.line, "jm_kumo", ("other voice", "phrase split"))
    assert next_remedy(c, "jm_kumo", garbled, min_rate=1.0) is None  # no word pause for a garbled line; rate 1.0 is the slowest
    assert next_remedy(c, "jm_kumo", garbled, min_rate=0.5) == "lower speed"
    first = diagnose("Aquel control", "a que el control", "es")  # only the first word misheard: no place for a pause
    c = Candidate(_line(text="Aquel control", rate=1.0), voice="v", remedies=("lower speed",))
    assert next_remedy(c, None, first, min_rate=0.5) is None


def test_word_pause_changes_only_what_is_spoken():
    text = "Dijo que aquel control remoto"
    d = diagnose(text, "dijo que a que el control remoto", "es")
    assert word_pause_text(text, d) == "Dijo que, aquel control remoto"
    assert word_pause_text("Dijo, aquel control", diagnose("Dijo, aquel control", "dijo a que el control", "es")) is None  # a pause already
    two = diagnose("uno dos tres cuatro", "uno dos tres", "es")
    assert word_pause_text("uno dos tres cuatro", two) == "uno dos tres, cuatro"
    c = Candidate(_line(text=text), voice="v", spoken=word_pause_text(text, d))
    assert c.line.text == text  # the line (its subtitle, its WER) keeps the text
    assert diagnose(c.line.text, "dijo que aquel control remoto", "es").misheard == ()


def test_lower_speed_goes_below_one_down_to_min_rate():
    assert lower_rate(1.0, 0.5) == pytest.approx(0.8) and lower_rate(0.55, 0.5) == 0.5
    assert lower_rate(1.0) == 1.0 and lower_rate(1.5) == pytest.approx(1.2)  # a backend with min_rate 1.0: not below
    from lipdub.backends.tts.kokoro import MIN_RATE, KokoroTts
    from lipdub.contracts.synthesize import TtsBackend

    assert TtsBackend.min_rate == 1.0 and KokoroTts.min_rate == MIN_RATE == 0.5
    at_min = Candidate(_line(text="sin comas", rate=0.5), voice="v", remedies=("other voice",))
    assert next_remedy(at_min, None, None, min_rate=0.5) is None
    # a line near its speed-up limit (no room to be said 1.25x longer) is not slowed below 1.0 nor paused
    near = Candidate(_line(text="dijo que aquel control", rate=1.0, stretch=1.84, natural=1.5, limit=1.25), voice="v")
    room = Candidate(_line(text="dijo que aquel control", rate=1.0, stretch=1.1, natural=1.5, limit=1.25), voice="v")
    assert not has_room(near) and has_room(room)
    assert slowest_rate(near, 0.5) == 1.0 and slowest_rate(room, 0.5) == 0.5
    d = diagnose("dijo que aquel control", "dijo que a que el control", "es")
    assert next_remedy(near, None, d, min_rate=slowest_rate(near, 0.5)) is None  # no lower speed, no word pause, no split
    assert next_remedy(room, None, d, min_rate=slowest_rate(room, 0.5)) == "lower speed"
    assert next_remedy(Candidate(room.line, "v", ("lower speed",)), None, d, min_rate=0.5) == "word pause"


def test_fit_at_a_rate_below_one_stretches_into_the_slot():
    """A re-synthesis at TTS rate 0.8 (down to the backend's ``min_rate``) is longer; the stretch takes
    up the rest and the line stays in its window at the same effective speed-up limit."""
    from lipdub.timing.fit import Slot
    from lipdub.timing.isochrony import IsochronyPolicy, fit_line

    sr, rates = 16000, []

    def speak(text, rate):  # 1.0 s of voiced sound at rate 1.0, longer when slower
        rates.append(rate)
        t = np.arange(int(sr * 1.0 / rate)) / sr
        return Speech((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr), None

    slot = Slot(start_s=0.0, end_s=1.0, free_before_s=0.0, free_after_s=0.0)
    policy = IsochronyPolicy(max_speedup=1.25, max_attempts=1)
    line = fit_line("hola", slot, policy, speak, None, sr, max_backend_rate=1.0, start_rate=0.8, min_backend_rate=0.5)
    assert rates == [0.8] and line.tts_rate == 0.8
    assert line.fitted.stretch_ratio == pytest.approx(1.25, abs=0.03) and line.speedup <= 1.25 + 1e-3
    assert line.fitted.placed_end_s - line.fitted.placed_start_s <= 1.0 + 0.02 and line.fitted.overrun_s < 0.02
    fit_line("hola", slot, policy, speak, None, sr, max_backend_rate=1.0, start_rate=0.3, min_backend_rate=0.5)
    fit_line("hola", slot, policy, speak, None, sr, max_backend_rate=1.0, start_rate=0.8)  # a backend with min_rate 1.0
    assert rates[1:] == [0.5, 1.0]


def test_kept_version_understood_first_then_fitting():
    ok_slow = Candidate(_line(rate=1.0, stretch=1.6), "a", wer=0.1)  # over its limit
    ok_fit = Candidate(_line(rate=1.0, stretch=1.2), "b", wer=0.2)
    misheard = Candidate(_line(rate=1.0, stretch=1.0), "c", wer=0.6)
    assert best_candidate([misheard, ok_slow, ok_fit], 0.25) is ok_fit
    assert best_candidate([misheard, ok_slow], 0.25) is ok_slow
    worse = Candidate(_line(), "d", wer=0.9)
    assert best_candidate([worse, misheard], 0.25) is misheard  # both misheard: the lower WER


def test_one_effective_speedup():
    """TTS rate x stretch / natural speed, the same figure in the fit, the record and script.json."""
    line = _line(rate=1.5, stretch=1.14, natural=1.5)
    assert line.speedup == pytest.approx(1.14)
    f = FitReport(tts_backend="kokoro", synthesized_duration_s=3.0, trimmed_duration_s=3.0, slot_start_s=0, slot_end_s=2,
                  placed_start_s=0, placed_end_s=2.6, stretch_ratio=1.14, tts_rate=1.5, natural_speed=1.5)
    assert f.speedup == line.speedup == effective_speedup(1.5, 1.14, 1.5)
    assert '"speedup":1.14' in f.model_dump_json()  # what the studio's script table reads
    assert FitReport.model_validate_json(f.model_dump_json()).speedup == f.speedup
    old = FitReport(tts_backend="espeak-ng", synthesized_duration_s=3.0, trimmed_duration_s=3.0, slot_start_s=0, slot_end_s=2,
                    placed_start_s=0, placed_end_s=2.6, stretch_ratio=1.03, tts_rate=1.25)
    assert old.speedup == pytest.approx(1.2875)  # issue 14: x1.03 at TTS rate 1.25 is 1.29, over the 1.25 limit


def test_natural_speed():
    es = NATURAL_SYLLABLES_PER_S["es"]
    assert natural_speed(es / 1.2, "es", 1.5) == pytest.approx(1.2)
    assert natural_speed(es / 1.8, "es", 1.5) == 1.5  # capped (kokoro.MAX_NATURAL_SPEED)
    assert natural_speed(es * 1.1, "es", 1.5) == 1.0  # a fast voice is never slowed
    assert natural_speed(None, "es", 1.5) == natural_speed(4.0, "xx", 1.5) == 1.0


def test_voice_match_default_is_the_backends(tmp_path):
    from lipdub.config import DubConfig
    from lipdub.pipeline.lines import voice_match_on

    def ctx(**kw):
        return SimpleNamespace(config=DubConfig(input=tmp_path / "a.wav", targets=["es"], output=tmp_path, **kw))

    assert voice_match_on(ctx(), "espeak-ng") is True
    assert voice_match_on(ctx(), "kokoro") is False
    assert voice_match_on(ctx(voice_match=True), "kokoro") is True
    assert voice_match_on(ctx(voice_match=False), "espeak-ng") is False
    assert voice_match_on(ctx(), "xtts") is False
    with pytest.raises(ConfigError, match="clones"):
        voice_match_on(ctx(voice_match=True), "xtts")  # would be ignored: refused


def test_batch_windows_and_word_owner():
    assert _windows([10.0, 10.0, 10.0, 30.0, 2.0], 28.0, 1.0) == [[0, 1], [2], [3], [4]]
    spans = [(0.0, 2.0), (3.0, 5.0)]
    assert _owner(spans, 2.6, 3.4) == 1  # a word starting early in the gap belongs to the next line
    assert _owner(spans, 1.8, 2.4) == 0
    assert _owner(spans, 2.2, 2.3) == 0  # in the gap, nearer the first line
    assert _owner(spans, 1.7, 3.2) == 1  # across the whole gap, more of it over the first line: the line it ends in
    assert _owner(spans, 4.0, 5.6) == 1  # running on past the last line
    assert multilingual("base", "es") and multilingual("tiny.en", "en") and not multilingual("tiny.en", "es")


def test_timing_checks_agree(tmp_path):
    """The share of lines fitted and the per-line check count the same lines (issue 14's contradiction)."""
    from lipdub.qc.report import _timing_checks
    from lipdub.qc.thresholds import Thresholds
    from lipdub.script import Script, Segment, TargetLine

    def fit(start, end, rate, stretch, natural=1.0):
        return FitReport(tts_backend="kokoro", synthesized_duration_s=1, trimmed_duration_s=1, slot_start_s=start, slot_end_s=end,
                         placed_start_s=start, placed_end_s=end, stretch_ratio=stretch, tts_rate=rate, natural_speed=natural,
                         max_stretch=1.25)

    segs = [Segment(id=0, start_s=0, end_s=2, speaker="A", source_text="a", targets={"es": TargetLine(text="x", fit=fit(0, 2, 1.25, 1.03))}),
            Segment(id=1, start_s=3, end_s=4, speaker="A", source_text="b", targets={"es": TargetLine(text="y", fit=fit(3, 4, 1.5, 1.1, 1.5))})]
    data: dict = {}
    checks = {c.name: c for c in _timing_checks(Script(source_language="en", segments=segs), "es", 5.0, Thresholds(), data)}
    assert data["timing"]["over_limit"] == [0]  # 1.25 x 1.03 = 1.29 > 1.25; 1.5 x 1.1 / 1.5 = 1.1 fits
    assert checks["fit_share"].value == 0.5 and checks["fit_share"].verdict == "fail"
    assert checks["segments"].verdict == "warn" and "1 over their speed-up limit" in checks["segments"].label
