"""TTS backend ``elevenlabs``: ElevenLabs instant voice cloning and text-to-speech over HTTP.

API (https://elevenlabs.io/docs/api-reference): ``POST /v1/voices/add`` (multipart ``name`` +
``files``: instant voice clone, returns ``voice_id``) and ``POST /v1/text-to-speech/{voice_id}``
(JSON ``text``, ``model_id``, ``voice_settings.speed`` 0.7-1.2) with ``output_format=pcm_24000``
(raw 16-bit PCM, 24 kHz; a WAV body is decoded too). The key is sent as ``xi-api-key``.

Configuration: ``ELEVENLABS_API_KEY`` (required), ``LIPDUB_ELEVENLABS_BASE_URL`` (default
``https://api.elevenlabs.io``), ``LIPDUB_ELEVENLABS_MODEL`` (default ``eleven_multilingual_v2``).
Cloned voices are remembered per reference clip (SHA-256 of its bytes) in
``$XDG_CACHE_HOME/lipdub/elevenlabs_voices.json`` so that re-runs do not clone again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ...contracts.synthesize import Speech, TtsBackend
from ...errors import BackendUnavailable, ConfigError, StageFailed
from ...languages import Language
from ...registry import require_module
from ._http_audio import decode_audio_bytes

ENV_API_KEY = "ELEVENLABS_API_KEY"
ENV_BASE_URL = "LIPDUB_ELEVENLABS_BASE_URL"
ENV_MODEL = "LIPDUB_ELEVENLABS_MODEL"
DEFAULT_BASE_URL = "https://api.elevenlabs.io"
DEFAULT_MODEL = "eleven_multilingual_v2"
PCM_RATE_HZ = 24000
RATE_LIMITS = (0.7, 1.2)  # voice_settings.speed range of the API


def _cache_file() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "lipdub" / "elevenlabs_voices.json"


class ElevenLabsTts(TtsBackend):
    """ElevenLabs speech, with each speaker's voice cloned from their reference clip (:meth:`clone`).

    Keyword-only options: ``api_key``, ``base_url``, ``model`` (defaults from the environment,
    above), ``timeout_s``.

    Raises:
        BackendUnavailable: no API key (names ``ELEVENLABS_API_KEY``), or httpx is missing.
    """

    name = "elevenlabs"
    clones = True
    max_rate = RATE_LIMITS[1]

    def __init__(self, *, api_key: str | None = None, base_url: str | None = None, model: str | None = None,
                 timeout_s: float = 120.0) -> None:
        self._httpx = require_module("httpx", "httpx")
        self.api_key = api_key or os.environ.get(ENV_API_KEY) or ""
        if not self.api_key:
            raise BackendUnavailable("the elevenlabs TTS needs an API key (ELEVENLABS_API_KEY is not set)",
                                     f"export {ENV_API_KEY}=<your key from elevenlabs.io, Profile > API keys>")
        self.base_url = (base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL).rstrip("/")
        self.model = model or os.environ.get(ENV_MODEL) or DEFAULT_MODEL
        if not timeout_s > 0:
            raise ConfigError(f"elevenlabs timeout_s must be > 0, got {timeout_s}", "use e.g. 120")
        self.timeout_s = float(timeout_s)

    @classmethod
    def check(cls) -> str:
        """Check that a key is configured (no request is made)."""
        tts = cls()
        return f"model {tts.model} at {tts.base_url}"

    def supports(self, language: Language) -> bool:
        """Any language: the multilingual models read the text's language."""
        return True

    def _headers(self) -> dict[str, str]:
        return {"xi-api-key": self.api_key}

    def _request(self, method: str, url: str, **kw):
        httpx = self._httpx
        try:
            resp = httpx.request(method, url, headers=self._headers(), timeout=self.timeout_s, **kw)
        except httpx.HTTPError as exc:
            raise StageFailed(f"ElevenLabs ({self.base_url}) cannot be reached ({exc})", f"check the network or {ENV_BASE_URL}") from exc
        if resp.status_code in (401, 403):
            raise BackendUnavailable(f"ElevenLabs refused the API key (HTTP {resp.status_code})", f"check {ENV_API_KEY}")
        if resp.status_code != 200:
            raise StageFailed(f"ElevenLabs request failed (HTTP {resp.status_code}: {resp.text[:200]})", "see the message; check the plan's quota")
        return resp

    def clone(self, name: str, reference_wav: str | os.PathLike) -> str:
        """Instant-clone a voice from a reference clip; returns its ``voice_id`` (cached per clip).

        Raises:
            InputError-like ConfigError: the clip does not exist. StageFailed: the API failed.
        """
        ref = Path(reference_wav)
        if not ref.is_file():
            raise ConfigError(f"reference clip {ref} does not exist", "re-run the profiles stage")
        data = ref.read_bytes()
        key = f"{self.base_url}|{hashlib.sha256(data).hexdigest()}"
        cache_path = _cache_file()
        cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
        if key in cache:
            return cache[key]
        resp = self._request("POST", f"{self.base_url}/v1/voices/add", data={"name": f"lipdub {name}"},
                             files=[("files", (ref.name, data, "audio/wav"))])
        try:
            voice_id = str(resp.json()["voice_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise StageFailed(f"ElevenLabs voice clone answer has no voice_id ({resp.text[:200]})", "check the API version") from exc
        cache[key] = voice_id
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(cache, indent=1))
        os.replace(tmp, cache_path)
        return voice_id

    def synthesize(self, text: str, language: Language, voice: str | None = None, rate: float = 1.0) -> Speech:
        """Speak ``text`` with ElevenLabs voice ``voice`` (a voice_id, e.g. from :meth:`clone`).

        Args:
            rate: ``voice_settings.speed``, 0.7..1.2.

        Raises:
            ConfigError: no voice, empty text or rate out of range.
            BackendUnavailable: the key was refused. StageFailed: the API failed.
        """
        if not text.strip():
            raise ConfigError("nothing to speak: the text is empty", "give the line some text")
        if not voice:
            raise ConfigError("the elevenlabs TTS needs a voice id", "give --voice VOICE_ID, or let the profiles stage clone each speaker")
        if not RATE_LIMITS[0] <= rate <= RATE_LIMITS[1]:
            raise ConfigError(f"elevenlabs rate {rate} out of range", f"use {RATE_LIMITS[0]}..{RATE_LIMITS[1]}")
        body = {"text": text, "model_id": self.model, "voice_settings": {"speed": round(float(rate), 4)}}
        resp = self._request("POST", f"{self.base_url}/v1/text-to-speech/{voice}", params={"output_format": f"pcm_{PCM_RATE_HZ}"}, json=body)
        samples, sr = decode_audio_bytes(resp.content, PCM_RATE_HZ, "ElevenLabs")
        return Speech(samples=samples, sample_rate_hz=sr, phonemes=None, voice=voice)
