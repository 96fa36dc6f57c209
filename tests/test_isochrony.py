"""Closed-loop isochrony (lipdub.timing.isochrony): real espeak-ng speech, the llm translator against a
local OpenAI-compatible server that gives a long translation first and a shorter one when asked."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lipdub.contracts.translate import TRANSLATORS, TranslationRequest
from lipdub.errors import ConfigError
from lipdub.languages import parse_language
from lipdub.script import Segment
from lipdub.timing.fit import Slot, trim_silence
from lipdub.timing.isochrony import (
    OFFSCREEN_EXTRA_SPEEDUP,
    estimate_duration_s,
    estimate_line,
    fit_line,
    policy_for,
    window_s,
)
from lipdub.timing.slots import compute_slots

EN, ES = parse_language("en"), parse_language("es")
RATE_HZ = 48000
LONG = ("Cuando llegamos a la estación del tren ya se había marchado hacia la ciudad y tuvimos que esperar "
        "muchísimo tiempo sentados en un banco de madera")
SHORT = "El tren ya se había ido."


def speaker(espeak, calls=None):
    def speak(text, rate):
        if calls is not None:
            calls.append((text, rate))
        return espeak.synthesize(text, ES, voice="es", rate=rate), None
    return speak


@pytest.fixture
def llm(monkeypatch):
    """A chat server: the first translation of a line is LONG; a request carrying previous_too_long gets SHORT."""
    seen: list[list[dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            lines = json.loads(body["messages"][-1]["content"])["lines"]
            seen.append(lines)
            out = [{"id": ln["id"], "text": SHORT if ln.get("previous_too_long") else LONG} for ln in lines]
            data = json.dumps({"choices": [{"message": {"content": json.dumps({"translations": out})}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    translator = TRANSLATORS.create("llm", base_url=f"http://127.0.0.1:{srv.server_address[1]}/v1", model="test", api_key="")
    yield translator, seen
    srv.shutdown()


def shortener(translator, source="When we got to the station the train had already left."):
    return lambda text, budget_s: translator.translate([TranslationRequest(source, budget_s, too_long=text)], EN, ES)[0]


def test_policy_and_estimate():
    on, off = policy_for(True, 1.25, 3, 0.25), policy_for(False, 1.25, 3, 0.25)
    assert on.max_speedup == 1.25 and off.max_speedup == pytest.approx(1.25 + OFFSCREEN_EXTRA_SPEEDUP)
    with pytest.raises(ConfigError, match="max-attempts"):
        policy_for(True, 1.25, 0, 0.25)
    slot = Slot(1.0, 3.0, free_before_s=0.5, free_after_s=0.4)
    assert window_s(slot, on) == pytest.approx(2.0 + 0.4 + 0.25)  # before-borrow capped
    assert estimate_duration_s("Hola, ¿cómo estás?", 5.0) == pytest.approx(6 / 5.0)


def test_rule_based_translator_cannot_shorten_is_reported():
    slot = Slot(0.0, 1.0)
    text, hist = estimate_line(LONG, slot, policy_for(True, 1.25, 3, 0.25), 6.0, None)
    assert text == LONG and len(hist) == 1
    assert hist[0].action.startswith("cannot shorten") and hist[0].needed_ratio > 1.25


def test_estimate_asks_llm_for_shorter(llm):
    translator, seen = llm
    slot = Slot(0.0, 1.5, free_after_s=0.3)
    text, hist = estimate_line(LONG, slot, policy_for(True, 1.25, 3, 0.25), 6.0, shortener(translator))
    assert text == SHORT
    assert [h.action for h in hist] == ["re-translate shorter", "fit"]
    assert seen[-1][0]["previous_too_long"] == LONG and seen[-1][0]["budget_s"] == pytest.approx(1.8)


def test_loop_retranslates_until_it_fits(espeak, llm):
    translator, seen = llm
    slot = Slot(2.0, 3.6, free_before_s=0.1, free_after_s=0.2)
    calls = []
    res = fit_line(LONG, slot, policy_for(True, 1.25, 3, 0.25), speaker(espeak, calls), shortener(translator), RATE_HZ,
                   max_backend_rate=2.5)
    assert res.text == SHORT and calls[0] == (LONG, 1.0)
    assert "re-translate shorter" in [h.action for h in res.history]
    assert res.history[-1].action == "fit" and res.speedup <= 1.25 + 1e-3
    f = res.fitted
    assert f.overrun_s == 0.0 and f.placed_start_s >= slot.start_s - slot.free_before_s - 1e-9
    assert f.placed_end_s <= slot.end_s + slot.free_after_s + 1e-3
    # never cut: the placed audio is the trimmed synthesis sped up by the stretch ratio
    assert f.placed_end_s - f.placed_start_s == pytest.approx(f.trimmed_duration_s / f.stretch_ratio, abs=0.02)


def test_loop_speaks_faster_before_stretching(espeak):
    text = "Esto es una prueba de velocidad."
    speech, _ = speaker(espeak)(text, 1.0)
    trimmed, _ = trim_silence(speech.samples, speech.sample_rate_hz)
    natural_s = trimmed.size / speech.sample_rate_hz
    slot = Slot(0.0, natural_s / 1.15)  # needs about 15 % faster
    res = fit_line(text, slot, policy_for(True, 1.25, 3, 0.25), speaker(espeak), None, RATE_HZ, max_backend_rate=2.5)
    assert res.history[0].action == "re-synthesize faster" and res.tts_rate > 1.05
    assert res.fitted.stretch_ratio < 1.1  # most of the speed-up came from the TTS rate
    assert res.speedup <= 1.25 + 1e-3 and res.fitted.overrun_s == 0.0


def test_consecutive_lines_never_overlap_or_cut(espeak):
    """Three tight lines, rule-based (no shortening): the last resort stretches past the limit
    rather than overlapping the next line or cutting speech."""
    segs = [Segment(id=i, start_s=a, end_s=b, speaker="S", source_text="x") for i, (a, b) in enumerate([(0.5, 1.2), (1.3, 2.0), (2.1, 2.6)])]
    slots = compute_slots(segs, 3.0)
    texts = ["Hola a todos mis amigos.", "Buenos días, señora.", "Nos vemos mañana por la tarde, si puedes."]
    placed = []
    for seg, text in zip(segs, texts):
        res = fit_line(text, slots[seg.id], policy_for(True, 1.25, 2, 0.25), speaker(espeak), None, RATE_HZ, max_backend_rate=2.5)
        f = res.fitted
        assert f.placed_end_s - f.placed_start_s == pytest.approx(f.trimmed_duration_s / f.stretch_ratio, abs=0.02)
        if f.overrun_s == 0.0 and res.speedup > 1.25 + 1e-3:
            assert res.history[-1].action.startswith("out of attempts")
        placed.append((f.placed_start_s, f.placed_end_s, f.overrun_s))
    for (a0, a1, ovr), (b0, _, _) in zip(placed, placed[1:]):
        assert ovr > 0 or a1 <= b0 + 1e-6
