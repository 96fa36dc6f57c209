"""TTS backend ``openai-speech``: any server speaking the OpenAI ``POST /v1/audio/speech`` API.

API: https://platform.openai.com/docs/api-reference/audio/createSpeech (body ``model``, ``input``,
``voice``, ``response_format``, ``speed`` 0.25-4.0). Local servers with the same route include
Kokoro-FastAPI, openedai-speech, LocalAI and AllTalk. Audio is requested as WAV.

Configuration (options or environment): ``LIPDUB_SPEECH_BASE_URL`` (including ``/v1``),
``LIPDUB_SPEECH_MODEL``, ``LIPDUB_SPEECH_API_KEY`` (optional for local servers),
``LIPDUB_SPEECH_VOICE`` (default voice, e.g. ``alloy``). The API has no standard voice cloning, so
this backend speaks named voices; the pipeline's voice matching then moves them toward each speaker.
"""

from __future__ import annotations

import os

from ...contracts.synthesize import Speech, TtsBackend
from ...errors import BackendUnavailable, ConfigError, StageFailed
from ...languages import Language
from ...registry import require_module
from ._http_audio import decode_audio_bytes

ENV_BASE_URL = "LIPDUB_SPEECH_BASE_URL"
ENV_MODEL = "LIPDUB_SPEECH_MODEL"
ENV_API_KEY = "LIPDUB_SPEECH_API_KEY"
ENV_VOICE = "LIPDUB_SPEECH_VOICE"
RATE_LIMITS = (0.25, 4.0)  # the API's ``speed`` range


class OpenAISpeechTts(TtsBackend):
    """Speech from an OpenAI-compatible ``/v1/audio/speech`` endpoint.

    Keyword-only options: ``base_url``, ``model``, ``api_key``, ``voice`` (defaults from the
    environment variables above), ``timeout_s`` (per request, seconds).

    Raises:
        BackendUnavailable: base URL, model or voice not configured (names the variables), httpx missing.
    """

    name = "openai-speech"
    max_rate = RATE_LIMITS[1]

    def __init__(self, *, base_url: str | None = None, model: str | None = None, api_key: str | None = None,
                 voice: str | None = None, timeout_s: float = 120.0) -> None:
        self._httpx = require_module("httpx", "httpx")
        self.base_url = (base_url or os.environ.get(ENV_BASE_URL) or "").rstrip("/")
        self.model = model or os.environ.get(ENV_MODEL) or ""
        self.voice = voice or os.environ.get(ENV_VOICE) or ""
        self.api_key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
        missing = [v for v, x in ((ENV_BASE_URL, self.base_url), (ENV_MODEL, self.model), (ENV_VOICE, self.voice)) if not x]
        if missing:
            raise BackendUnavailable(
                f"the openai-speech TTS is not configured ({' and '.join(missing)} not set)",
                f"set {ENV_BASE_URL} (e.g. http://127.0.0.1:8880/v1), {ENV_MODEL} (e.g. tts-1), {ENV_VOICE} (e.g. alloy), "
                f"and {ENV_API_KEY} if the server needs a key",
            )
        if not timeout_s > 0:
            raise ConfigError(f"openai-speech timeout_s must be > 0, got {timeout_s}", "use e.g. 120")
        self.timeout_s = float(timeout_s)

    @classmethod
    def check(cls) -> str:
        """Check the configuration (no request is made).

        Raises:
            BackendUnavailable: not configured.
        """
        tts = cls()
        return f"model {tts.model}, voice {tts.voice} at {tts.base_url}"

    def supports(self, language: Language) -> bool:
        """Any language: the model decides (OpenAI's voices read the input's language)."""
        return True

    def synthesize(self, text: str, language: Language, voice: str | None = None, rate: float = 1.0) -> Speech:
        """Speak ``text`` (``language`` is implied by the text for this API).

        Args:
            voice: the server's voice name; default the configured one.
            rate: the API's ``speed``, 0.25..4.0 (1.0 normal).

        Returns:
            :class:`Speech` at the WAV's rate, no phoneme timings.

        Raises:
            ConfigError: empty text or rate out of range.
            StageFailed: the server refused or failed, or returned no decodable WAV.
        """
        if not text.strip():
            raise ConfigError("nothing to speak: the text is empty", "give the line some text")
        if not RATE_LIMITS[0] <= rate <= RATE_LIMITS[1]:
            raise ConfigError(f"openai-speech rate {rate} out of range", f"use {RATE_LIMITS[0]}..{RATE_LIMITS[1]}")
        name = voice or self.voice
        body = {"model": self.model, "input": text, "voice": name, "response_format": "wav", "speed": round(float(rate), 4)}
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        httpx = self._httpx
        try:
            resp = httpx.post(f"{self.base_url}/audio/speech", json=body, headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise StageFailed(f"openai-speech server {self.base_url} cannot be reached ({exc})", f"start the server or fix {ENV_BASE_URL}") from exc
        if resp.status_code != 200:
            raise StageFailed(f"openai-speech server refused the request (HTTP {resp.status_code}: {resp.text[:200]})",
                              f"check {ENV_MODEL}, {ENV_VOICE} and {ENV_API_KEY}")
        samples, sr = decode_audio_bytes(resp.content, None, "the openai-speech server")
        return Speech(samples=samples, sample_rate_hz=sr, phonemes=None, voice=name)
