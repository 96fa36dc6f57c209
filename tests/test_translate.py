"""Stage 6 (translate): apertium on real sentences; the LLM translator against a local test server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import needs_apertium

from lipdub.contracts.translate import TRANSLATORS, TranslationRequest
from lipdub.errors import BackendUnavailable, ConfigError, StageFailed
from lipdub.languages import parse_language

EN, ES, JA, FR = (parse_language(c) for c in ("en", "es", "ja", "fr"))



@needs_apertium
def test_apertium_en_es(apertium):
    out = apertium.translate(
        [TranslationRequest("Hello, my friend.", 1.5), TranslationRequest("The dogs are in the house.", 2.0)], EN, ES
    )
    assert len(out) == 2 and all(out)
    assert "hola" in out[0].lower()
    assert "perros" in out[1].lower() and "casa" in out[1].lower()
    assert "*" not in "".join(out)


@needs_apertium
def test_apertium_keeps_line_count(apertium, monkeypatch):
    calls = []
    real_run = apertium._run
    monkeypatch.setattr(apertium, "_run", lambda mode, text: calls.append(mode) or real_run(mode, text))
    texts = [
        "Hello.",
        "",
        "...",
        "   ",
        "How are you\ntoday?",
        "!",
        "The cat is on the table.",
        "-",
        "I like green apples.",
        "?!",
        "Thank you very much.",
        "",
    ]
    out = apertium.translate([TranslationRequest(t) for t in texts], EN, ES)
    assert len(out) == len(texts)
    for text, translated in zip(texts, out):
        assert (translated == "") == (text.strip() == "")
        assert "\n" not in translated
    assert out[2] == "..." and out[5] == "!" and out[9] == "?!"
    assert "gato" in out[6].lower() and "mesa" in out[6].lower()
    assert "manzanas" in out[8].lower()
    assert "gracias" in out[10].lower()
    assert calls == ["eng-spa"]  # all lines in one apertium run


@needs_apertium
def test_apertium_iso_639_1_pair_and_fallback(monkeypatch):
    translator = TRANSLATORS.create("apertium")
    if not translator.supports(FR, ES):
        pytest.skip("apertium-fr-es is not installed")
    assert translator.mode_for(FR, ES) == "fr-es"  # Debian names this old pair with 639-1 codes
    out = translator.translate([TranslationRequest("Bonjour mes amis."), TranslationRequest("Je suis content.")], FR, ES)
    assert "amigos" in out[0].lower()
    # if apertium's output cannot be split back into the lines, each line is translated alone
    calls = []
    real_run = translator._run

    def broken_join(mode, text):
        calls.append(text)
        result = real_run(mode, text)
        return result.replace("\n\n", "\n") if len(calls) == 1 else result

    monkeypatch.setattr(translator, "_run", broken_join)
    again = translator.translate([TranslationRequest("Bonjour mes amis."), TranslationRequest("Je suis content.")], FR, ES)
    assert again == out and len(calls) == 3


@needs_apertium
def test_apertium_unsupported_pair(apertium):
    assert not apertium.supports(EN, JA)
    with pytest.raises(ConfigError, match="apertium") as info:
        apertium.translate([TranslationRequest("Hello.")], EN, JA)
    assert "apt-get install apertium-" in info.value.hint and "eng-spa" in info.value.hint
    with pytest.raises(ConfigError, match="not installed"):
        TRANSLATORS.create("apertium", mode="eng-xyz")
    assert "eng-spa" in TRANSLATORS.status("apertium").detail


# --- LLM translator against a local OpenAI-compatible test server ----------------------------


def chat_reply(content: str) -> dict:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}


def serve(replies: Callable[[dict, int], tuple[int, dict | str]]):
    """Start a server on 127.0.0.1 whose replies come from ``replies(request_json, call_index)``."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            body["_path"] = self.path
            body["_auth"] = self.headers.get("Authorization")
            received.append(body)
            status, payload = replies(body, len(received) - 1)
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 - the /models probe of `lipdub doctor`
            data = json.dumps({"data": [{"id": "test-model"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1", received


@pytest.fixture
def llm_server():
    servers = []

    def start(replies):
        server, url, received = serve(replies)
        servers.append(server)
        return url, received

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def user_lines(body: dict) -> list[dict]:
    return json.loads(body["messages"][1]["content"])["lines"]


def test_llm_retries_malformed_reply(llm_server, monkeypatch):
    def replies(body, index):
        if index == 0:
            return 200, chat_reply('{"translations": [{"id": 0, "text": "Hola"}')  # truncated JSON
        lines = user_lines(body)
        return 200, chat_reply(
            "```json\n" + json.dumps({"translations": [{"id": l["id"], "text": f"ES {l['text']}"} for l in lines]}) + "\n```"
        )

    url, received = llm_server(replies)
    monkeypatch.setenv("LIPDUB_LLM_API_KEY", "sekret")
    translator = TRANSLATORS.create("llm", base_url=url, model="test-model", max_retries=2, retry_backoff_s=0)
    requests = [TranslationRequest("Hello.", 2.5), TranslationRequest(""), TranslationRequest("Thank you very much.", None)]
    out = translator.translate(requests, EN, ES)
    assert out == ["ES Hello.", "", "ES Thank you very much."]
    assert len(received) == 2
    first = received[0]
    assert first["_path"] == "/v1/chat/completions" and first["_auth"] == "Bearer sekret"
    assert first["model"] == "test-model" and first["response_format"] == {"type": "json_object"}
    lines = user_lines(first)
    assert [l["id"] for l in lines] == [0, 2]  # the empty line is not sent
    assert lines[0]["budget_s"] == 2.5 and lines[0]["max_syllables"] == 13  # floor(2.5 s * 5.5 syllables/s)
    assert "budget_s" not in lines[1]
    assert "Spanish" in first["messages"][0]["content"]
    # the retry carries the bad reply and the validation error back to the model
    retry = received[1]["messages"]
    assert retry[2]["role"] == "assistant" and retry[2]["content"].startswith('{"translations"')
    assert "invalid" in retry[3]["content"] and "JSON" in retry[3]["content"]
    # `lipdub doctor`: configured from the environment and the server answers
    monkeypatch.setenv("LIPDUB_LLM_BASE_URL", url)
    monkeypatch.setenv("LIPDUB_LLM_MODEL", "test-model")
    status = TRANSLATORS.status("llm")
    assert status.usable and "test-model" in status.detail


def test_llm_retries_server_errors_and_batches(llm_server):
    def replies(body, index):
        if index == 0:
            return 503, {"error": "overloaded"}
        lines = user_lines(body)
        return 200, chat_reply(json.dumps({"translations": [{"id": l["id"], "text": l["text"].upper()} for l in lines]}))

    url, received = llm_server(replies)
    translator = TRANSLATORS.create("llm", base_url=url, model="m", api_key="", batch_size=2, max_retries=1, retry_backoff_s=0)
    out = translator.translate([TranslationRequest(t, 1.0) for t in ("a b", "c", "d", "e f")], EN, ES)
    assert out == ["A B", "C", "D", "E F"]
    assert len(received) == 3  # 503, then two batches of two lines
    assert [len(user_lines(b)) for b in received[1:]] == [2, 2]
    assert received[0]["_auth"] is None


def test_llm_wrong_ids_then_garbage_fails(llm_server):
    def replies(body, index):
        if index == 0:  # valid JSON, but a line is missing
            return 200, chat_reply(json.dumps({"translations": [{"id": 0, "text": "Hola"}]}))
        return 200, chat_reply("I am sorry, I cannot do that.")

    url, received = llm_server(replies)
    translator = TRANSLATORS.create("llm", base_url=url, model="m", max_retries=2, retry_backoff_s=0)
    with pytest.raises(StageFailed, match="3 attempts"):
        translator.translate([TranslationRequest("Hello."), TranslationRequest("Bye.")], EN, ES)
    assert len(received) == 3
    assert "missing [1]" in received[1]["messages"][-1]["content"]


def test_llm_empty_text_rejected(llm_server):
    url, received = llm_server(lambda body, i: (200, chat_reply('{"translations": [{"id": 0, "text": "  "}]}')))
    translator = TRANSLATORS.create("llm", base_url=url, model="m", max_retries=0)
    with pytest.raises(StageFailed):
        translator.translate([TranslationRequest("Hello.")], EN, ES)
    assert len(received) == 1


def test_llm_client_error_not_retried(llm_server):
    url, received = llm_server(lambda body, i: (401, {"error": "bad key"}))
    translator = TRANSLATORS.create("llm", base_url=url, model="m", max_retries=3, retry_backoff_s=0)
    with pytest.raises(StageFailed, match="HTTP 401"):
        translator.translate([TranslationRequest("Hello.")], EN, ES)
    assert len(received) == 1


def test_llm_missing_configuration(monkeypatch):
    for var in ("LIPDUB_LLM_BASE_URL", "LIPDUB_LLM_MODEL", "LIPDUB_LLM_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(BackendUnavailable, match="LIPDUB_LLM_BASE_URL and LIPDUB_LLM_MODEL"):
        TRANSLATORS.create("llm")
    monkeypatch.setenv("LIPDUB_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    with pytest.raises(BackendUnavailable, match="LIPDUB_LLM_MODEL") as info:
        TRANSLATORS.create("llm")
    assert "LIPDUB_LLM_MODEL" in info.value.hint
    assert not TRANSLATORS.status("llm").usable
    with pytest.raises(ConfigError):
        TRANSLATORS.create("llm", model="m", batch_size=0)


def test_llm_gets_terms_and_context(llm_server):
    from lipdub.translation import Glossary, LineTranslator, SourceLine

    def replies(body, index):
        lines = user_lines(body)
        # a model that obeys: each line's terms, then the line upper-cased
        return 200, chat_reply(json.dumps({"translations": [
            {"id": l["id"], "text": " ".join([*l.get("terms", {}).values(), l["text"].upper()])} for l in lines]}))

    url, received = llm_server(replies)
    translator = TRANSLATORS.create("llm", base_url=url, model="m", batch_size=2, max_retries=0)
    assert translator.handles_terms
    lines = [SourceLine("Hello Diane.", 1.0), SourceLine("I heard a beep.", 1.2), SourceLine("Bye.", 0.5)]
    records = LineTranslator(translator, EN, ES, glossary=Glossary.parse("beep,pitido\n"), names=["Diane"]).translate_lines(lines)
    first, second = (user_lines(b) for b in received)
    assert first[0]["terms"] == {"Diane": "Diane"} and first[1]["terms"] == {"beep": "pitido"}
    assert "context_before" not in first[0] and first[1]["context_after"] == "Bye."
    assert second[0]["context_before"] == "I heard a beep." and "terms" not in second[0]
    assert "terms" in received[0]["messages"][0]["content"]
    assert records[1].glossary_hits[0].target == "pitido" and records[0].names_kept == ["Diane"]
    # a speaker rate given with the line sets its syllable ceiling
    translator.translate([TranslationRequest("Hello.", 2.0, syllables_per_s=4.0)], EN, ES)
    assert user_lines(received[-1])[0]["max_syllables"] == 8
