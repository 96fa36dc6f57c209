"""Cloning / cloud TTS backends: ElevenLabs and OpenAI-compatible speech against local HTTP servers
that return real speech (the JFK clip), and XTTS's missing package / weights errors."""

from __future__ import annotations

import io
import json
import threading
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile as sf

from lipdub.audio import read_audio
from lipdub.contracts.synthesize import TTS_BACKENDS
from lipdub.errors import BackendUnavailable, MissingWeights, StageFailed
from lipdub.languages import parse_language

ES = parse_language("es")


@pytest.fixture(scope="module")
def jfk(testdata):
    """Three seconds of the JFK clip as mono float32 at 16 kHz, and the same as WAV bytes."""
    from lipdub.audio import resample

    x, sr = read_audio(testdata / "sp_en_jfk.flac", mono=True)
    x = resample(x, sr, 16000)[: 3 * 16000]
    buf = io.BytesIO()
    sf.write(buf, x, 16000, format="WAV", subtype="PCM_16")
    return x, buf.getvalue()


@pytest.fixture
def server():
    """Start a local HTTP server with a handler ``fn(method, path, headers, body) -> (status, content_type, bytes)``."""
    servers = []
    calls: list[dict] = []

    def start(fn):
        class Handler(BaseHTTPRequestHandler):
            def _handle(self, method):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                calls.append({"method": method, "path": self.path, "headers": dict(self.headers), "body": body})
                status, ctype, data = fn(method, self.path, self.headers, body)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802 - http.server API
                self._handle("POST")

            def log_message(self, *args):
                pass

        srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}", calls

    yield start
    for srv in servers:
        srv.shutdown()


def test_openai_speech_roundtrip(server, jfk, monkeypatch):
    x, wav = jfk

    def handle(method, path, headers, body):
        return (200, "audio/wav", wav) if path == "/v1/audio/speech" else (404, "text/plain", b"no")

    base, calls = server(handle)
    for var in ("LIPDUB_SPEECH_BASE_URL", "LIPDUB_SPEECH_MODEL", "LIPDUB_SPEECH_VOICE", "LIPDUB_SPEECH_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    tts = TTS_BACKENDS.create("openai-speech", base_url=f"{base}/v1", model="tts-1", voice="alloy", api_key="k")
    speech = tts.synthesize("Hola, amigos.", ES, rate=1.2)
    assert speech.sample_rate_hz == 16000 and speech.voice == "alloy"
    np.testing.assert_allclose(speech.samples, x, atol=1.0 / 32768 + 1e-6)  # 16-bit round trip
    sent = json.loads(calls[0]["body"])
    assert sent == {"model": "tts-1", "input": "Hola, amigos.", "voice": "alloy", "response_format": "wav", "speed": 1.2}
    assert calls[0]["headers"]["Authorization"] == "Bearer k"


def test_openai_speech_errors(server, monkeypatch):
    for var in ("LIPDUB_SPEECH_BASE_URL", "LIPDUB_SPEECH_MODEL", "LIPDUB_SPEECH_VOICE"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(BackendUnavailable) as exc:
        TTS_BACKENDS.create("openai-speech")
    assert "LIPDUB_SPEECH_BASE_URL" in str(exc.value) and "LIPDUB_SPEECH_MODEL" in str(exc.value)
    base, _ = server(lambda *a: (200, "application/json", b'{"not": "audio"}'))
    tts = TTS_BACKENDS.create("openai-speech", base_url=f"{base}/v1", model="m", voice="v")
    with pytest.raises(StageFailed, match="not WAV"):
        tts.synthesize("Hola.", ES)
    base, _ = server(lambda *a: (400, "application/json", b'{"error": "bad voice"}'))
    tts = TTS_BACKENDS.create("openai-speech", base_url=f"{base}/v1", model="m", voice="v")
    with pytest.raises(StageFailed, match="HTTP 400"):
        tts.synthesize("Hola.", ES)


def test_elevenlabs_clone_and_speech(server, jfk, tmp_path, monkeypatch):
    x, wav = jfk
    ref = tmp_path / "ref.wav"
    ref.write_bytes(wav)
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()

    def handle(method, path, headers, body):
        if headers.get("xi-api-key") != "secret":
            return 401, "application/json", b'{"detail": "invalid key"}'
        if path == "/v1/voices/add":
            msg = BytesParser(policy=email_policy).parsebytes(
                b"Content-Type: " + headers["Content-Type"].encode() + b"\r\n\r\n" + body)
            parts = {p.get_param("name", header="content-disposition"): p for p in msg.iter_parts()}
            assert parts["name"].get_content() == "lipdub Ann"
            assert parts["files"].get_content() == wav
            return 200, "application/json", b'{"voice_id": "v123", "requires_verification": false}'
        if path.startswith("/v1/text-to-speech/v123?output_format=pcm_24000"):
            sent = json.loads(body)
            assert sent["text"] == "Hola." and sent["voice_settings"]["speed"] == 1.1
            return 200, "application/octet-stream", pcm
        return 404, "text/plain", b"no"

    base, calls = server(handle)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("ELEVENLABS_API_KEY", "secret")
    tts = TTS_BACKENDS.create("elevenlabs", base_url=base)
    assert tts.clone("Ann", ref) == "v123"
    assert tts.clone("Ann", ref) == "v123"  # remembered: no second clone request
    assert sum(c["path"] == "/v1/voices/add" for c in calls) == 1
    speech = tts.synthesize("Hola.", ES, voice="v123", rate=1.1)
    assert speech.sample_rate_hz == 24000  # raw PCM is taken at the requested pcm_24000 rate
    np.testing.assert_allclose(speech.samples, x, atol=2.0 / 32768)
    bad = TTS_BACKENDS.create("elevenlabs", base_url=base, api_key="wrong")
    with pytest.raises(BackendUnavailable, match="refused the API key"):
        bad.synthesize("Hola.", ES, voice="v123")


def test_elevenlabs_needs_key(monkeypatch):
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    with pytest.raises(BackendUnavailable) as exc:
        TTS_BACKENDS.create("elevenlabs")
    assert "ELEVENLABS_API_KEY" in str(exc.value)


def test_xtts_missing_package_or_weights(tmp_path, monkeypatch):
    from lipdub.backends.tts import xtts

    with pytest.raises(MissingWeights) as exc:
        xtts.find_model_dir(tmp_path)
    assert "model.pth" in str(exc.value) and str(tmp_path) in str(exc.value) and "LIPDUB_XTTS_DIR" in exc.value.hint
    for f in xtts.REQUIRED_FILES:
        (tmp_path / f).write_bytes(b"x")
    assert xtts.find_model_dir(tmp_path) == tmp_path
    monkeypatch.setenv("LIPDUB_XTTS_DIR", str(tmp_path))
    assert xtts.find_model_dir() == tmp_path
    try:
        import TTS  # noqa: F401
    except ImportError:
        with pytest.raises(BackendUnavailable, match="coqui-tts"):
            TTS_BACKENDS.create("xtts")
