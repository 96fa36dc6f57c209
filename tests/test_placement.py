"""Placement of fitted lines (lipdub.timing.placement) on real espeak-ng Spanish speech: a line that
overruns its slot delays the next one instead of being spoken over it; source crosstalk of two
speakers stays as in the source; lines that fit are not moved."""

from __future__ import annotations

import pytest

from lipdub.languages import parse_language
from lipdub.script import Segment, TargetLine
from lipdub.timing.isochrony import fit_line, policy_for
from lipdub.timing.placement import LineSpan, place_fits, ripple_starts, squeezed
from lipdub.timing.slots import MIN_GAP_S, compute_slots

ES = parse_language("es")
RATE_HZ = 48000
LONG = "Cuando llegamos a la estación del tren ya se había marchado hacia la ciudad."
MEDIUM = "Buenos días, señora, ¿cómo está usted hoy?"
SHORT = "Hola."


def _fit(espeak, text, slot, attempts=1):
    speak = lambda t, rate: (espeak.synthesize(t, ES, voice="es", rate=rate), None)  # noqa: E731
    return fit_line(text, slot, policy_for(True, 1.25, attempts, 0.25), speak, None, RATE_HZ, max_backend_rate=1.0)


def _dub(espeak, spans, texts, duration_s):
    """Segments ``(start, end, speaker)`` with their ``texts`` fitted (own fit) as target ``es``."""
    segs = [Segment(id=i, start_s=a, end_s=b, speaker=spk, source_text="x") for i, (a, b, spk) in enumerate(spans)]
    slots = compute_slots(segs, duration_s)
    lines = {}
    for seg, text in zip(segs, texts):
        line = _fit(espeak, text, slots[seg.id])
        lines[seg.id] = line
        seg.targets["es"] = TargetLine(text=text, fit=line.fitted.report("espeak-ng", slots[seg.id]))
    return segs, slots, lines


def test_overrunning_line_delays_the_next_one_in_order(espeak):
    """A long line in a 0.5 s slot right before the next line of the same speaker (gap 0) must
    overrun; the next one is delayed past it, and the one after that in turn (the chain)."""
    spans = [(1.0, 1.5, "A"), (1.5, 3.0, "A"), (3.1, 4.5, "A")]
    segs, slots, lines = _dub(espeak, spans, [LONG, MEDIUM, MEDIUM], 6.0)
    own = [(s.targets["es"].fit.placed_start_s, s.targets["es"].fit.placed_end_s) for s in segs]
    assert segs[0].targets["es"].fit.overrun_s > 0.1 and own[0][1] > own[1][0]  # the own fits overlap
    delayed = place_fits(segs, "es", slots)
    fits = [s.targets["es"].fit for s in segs]
    assert delayed and delayed[0] == 1
    assert fits[1].placed_start_s == pytest.approx(fits[0].placed_end_s + MIN_GAP_S, abs=1e-6)
    assert fits[1].delayed_s == pytest.approx(fits[1].placed_start_s - own[1][0], abs=1e-6) and fits[1].delayed_s > 0
    for a, b in zip(fits, fits[1:]):
        assert a.placed_start_s < b.placed_start_s and a.placed_end_s <= b.placed_start_s + 1e-6
    for f, line in zip(fits, lines.values()):  # audio never cut: the placed span is the audio's
        assert f.placed_end_s - f.placed_start_s == pytest.approx(line.fitted.duration_s, abs=1e-6)
    window_end = slots[1].end_s + slots[1].free_after_s
    assert fits[1].overrun_s == pytest.approx(max(0.0, fits[1].placed_end_s - window_end), abs=1e-3)
    if fits[1].placed_end_s + MIN_GAP_S > own[2][0]:
        assert 2 in delayed and fits[2].placed_start_s == pytest.approx(fits[1].placed_end_s + MIN_GAP_S, abs=1e-6)
    again = place_fits(segs, "es", slots)  # from the own fits: the same placement however often it runs
    assert again == delayed and [s.targets["es"].fit for s in segs] == fits


def test_source_crosstalk_of_two_speakers_is_kept(espeak):
    """B speaks over the end of A in the source: A's overrun does not move B (they overlap as in the source)."""
    spans = [(1.0, 1.6, "A"), (1.4, 3.0, "B")]
    segs, slots, _ = _dub(espeak, spans, [LONG, MEDIUM], 5.0)
    before = [s.targets["es"].fit.placed_start_s for s in segs]
    assert place_fits(segs, "es", slots) == []
    fits = [s.targets["es"].fit for s in segs]
    assert [f.placed_start_s for f in fits] == before and fits[0].placed_end_s > fits[1].placed_start_s
    # the same two lines by one speaker are not crosstalk: the second waits
    same = [LineSpan("A", 1.0, 1.6, fits[0].placed_start_s, fits[0].placed_end_s - fits[0].placed_start_s),
            LineSpan("A", 1.4, 3.0, fits[1].placed_start_s, fits[1].placed_end_s - fits[1].placed_start_s)]
    assert ripple_starts(same)[1] == pytest.approx(fits[0].placed_end_s + MIN_GAP_S)


def test_lines_that_fit_are_not_moved(espeak):
    spans = [(0.5, 2.0, "A"), (2.0, 3.5, "A"), (3.5, 5.0, "B")]  # adjacent, gap 0, each with room
    segs, slots, _ = _dub(espeak, spans, [SHORT, SHORT, SHORT], 6.0)
    assert all(s.targets["es"].fit.overrun_s == 0 for s in segs)
    own = [s.targets["es"].fit for s in segs]
    assert place_fits(segs, "es", slots) == []
    assert [s.targets["es"].fit for s in segs] == own


def test_squeezed_speeds_a_delayed_line_up_within_its_limit(espeak):
    segs = [Segment(id=0, start_s=1.0, end_s=3.0, speaker="A", source_text="x")]
    slot = compute_slots(segs, 3.2)[0]
    fitted = _fit(espeak, MEDIUM, slot).fitted
    late = slot.start_s + 0.5
    room = slot.end_s + slot.free_after_s - late
    assert fitted.duration_s > room  # placed 0.5 s late it would overrun
    out = squeezed(fitted, slot, late, 10.0)
    assert out.duration_s == pytest.approx(room, abs=0.03) and out.placed_start_s == fitted.placed_start_s
    assert out.stretch_ratio == pytest.approx(fitted.stretch_ratio * fitted.duration_s / room, rel=0.02)
    capped = squeezed(fitted, slot, late, 1.05)
    assert capped.stretch_ratio == pytest.approx(fitted.stretch_ratio * 1.05, rel=1e-6)
    assert capped.duration_s > room  # what the limit leaves is overrun, reported once placed (place_fits)
    assert capped.placed_end_s == pytest.approx(capped.placed_start_s + capped.duration_s)
    assert squeezed(fitted, slot, late, 1.0) is fitted


def test_stage_places_an_overrunning_line_before_the_next(testdata, tmp_path):
    """The two-speaker sample with its transcript, one short line made long: the synthesize stage
    delays the line after it instead of speaking both at once, writes that placement to
    script.json and placement.json, and leaves no overlap but source crosstalk."""
    import json
    from datetime import timedelta

    import srt

    from lipdub.config import DubConfig
    from lipdub.pipeline import Dubber
    from lipdub.script import Script
    from lipdub.timing.placement import spoken_over_by_design

    subs = []
    for line in (testdata / "sp_en_2spk_pyannote_sample.stm").read_text().splitlines():
        f = line.split(maxsplit=5)
        text = f[5] if f[5] != "Oh, hello." else "Oh, hello, what a surprise to hear you on the line today."
        subs.append(srt.Subtitle(len(subs) + 1, timedelta(seconds=float(f[3])), timedelta(seconds=float(f[4])), text))
    transcript = tmp_path / "2spk.srt"
    transcript.write_text(srt.compose(subs), encoding="utf-8")
    cfg = DubConfig(input=testdata / "sp_en_2spk_pyannote_sample.wav", targets=["es"], output=tmp_path / "out", tts="espeak-ng",
                    separation="none", speakers=2, source_language="en", transcript=transcript, check_intelligibility=False)
    result = Dubber(cfg).run(until="synthesize")
    script = Script.load(result.project_dir / "script.json")
    segs = sorted((s for s in script.segments if s.targets.get("es") and s.targets["es"].fit), key=lambda s: s.start_s)
    long_i = next(i for i, s in enumerate(segs) if s.start_s == pytest.approx(8.436, abs=0.05))
    first, nxt = segs[long_i].targets["es"].fit, segs[long_i + 1].targets["es"].fit
    assert first.overrun_s > 0 and first.delayed_s == 0
    assert nxt.delayed_s > 0 and nxt.placed_start_s == pytest.approx(first.placed_end_s + MIN_GAP_S, abs=1e-6)
    assert segs[long_i + 1].id in result.stages["synthesize:es"].details["delayed_segments"]
    placement = json.loads((result.project_dir / "tts/es/placement.json").read_text())
    for s in segs:
        f = s.targets["es"].fit
        assert placement[str(s.id)]["start_s"] == pytest.approx(f.placed_start_s, abs=1e-5)
    spans = [LineSpan(s.speaker, s.start_s, s.end_s, s.targets["es"].fit.placed_start_s, 0.0) for s in segs]
    for i, a in enumerate(segs):
        for j in range(i + 1, len(segs)):
            b = segs[j]
            fa, fb = a.targets["es"].fit, b.targets["es"].fit
            if fa.placed_end_s > fb.placed_start_s + 1e-3:
                assert spoken_over_by_design(spans[i], spans[j]), (a.id, b.id)
