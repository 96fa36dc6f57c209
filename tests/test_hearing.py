"""The pieces of the intelligibility loop and of the one effective speed-up, without models: phrase split
and join, the order of the remedies, which version of a line is kept, the natural speed of a voice,
the voice-match default per backend, the line windows of a batch, and the report's timing checks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from lipdub.contracts.synthesize import PhonemeTiming, Speech
from lipdub.errors import ConfigError
from lipdub.pipeline.hearing import Candidate, best_candidate, join_speech, next_remedy, split_phrases
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
