"""Translate backend ``llm``: a chat model behind any OpenAI-compatible ``/v1/chat/completions`` API.

Works with OpenAI, and with local servers that speak the same API (llama.cpp ``llama-server``, vLLM,
Ollama's ``/v1``, LM Studio...). The API is the OpenAI Chat Completions API
(https://platform.openai.com/docs/api-reference/chat/create); ``response_format`` JSON mode is
requested and the reply is validated with pydantic whether or not the server honours it.

Duration budgets: each line is sent with its budget in seconds and a syllable ceiling
``floor(budget_s * syllables_per_s)``. The default 5.5 syllables/s is a comfortable dubbing
rate, below the natural speaking rates measured by Pellegrino, Coupé & Marsico (2011), "A
cross-language perspective on speech information rate", Language 87(3): 5.2 (Mandarin) to 7.8
(Spanish, Japanese) syllables/s; the slack leaves room for the fit stage's time-stretch.

Fixed terms (``TranslationRequest.terms``: glossary entries, names to keep) are sent with their line
as ``terms`` (source -> required target) and the prompt asks for them verbatim. The lines of a batch
are consecutive lines of the script, so the model sees their neighbours; the first and last line of
a batch also carry ``context_before`` / ``context_after`` (the source lines around, not to be
translated).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from typing import Annotated, Any

from pydantic import BaseModel, StringConstraints, ValidationError

from ...contracts.translate import TranslationRequest, TranslatorBackend
from ...errors import BackendUnavailable, ConfigError, StageFailed
from ...languages import Language
from ...registry import require_module

logger = logging.getLogger(__name__)

ENV_BASE_URL = "LIPDUB_LLM_BASE_URL"
ENV_MODEL = "LIPDUB_LLM_MODEL"
ENV_API_KEY = "LIPDUB_LLM_API_KEY"

#: Default speaking rate used to turn a duration budget into a syllable ceiling (see module doc).
DEFAULT_SYLLABLES_PER_S = 5.5

SYSTEM_PROMPT = (
    "You are a professional dubbing translator. Translate each line from {source} to {target}. "
    "Each translation will be spoken by a voice actor in place of the original line, so it must fit "
    "the line's time budget: budget_s is the time available in seconds and max_syllables the most "
    "syllables that fit in it (estimated at {rate} syllables per second). Stay within max_syllables, "
    "shortening or rephrasing while keeping the meaning, names, numbers and tone; lines without a "
    "budget have no limit. A line with previous_too_long was translated before as that text and it "
    "was too long to speak in budget_s: give a clearly shorter translation than that one. "
    "A line with terms maps source words of that line to the exact words its translation must use "
    "(names and terms fixed by the client): use each target exactly as given. context_before and "
    "context_after are the source lines around a line, for understanding only: do not translate them. "
    "Translate every line on its own: do not merge, split, drop or add lines, "
    "and do not add notes. Reply with JSON only, in this form: "
    '{{"translations": [{{"id": <the line id>, "text": "<the translation>"}}]}} '
    "with exactly one entry for each line id."
)


class _Item(BaseModel):
    id: int
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Reply(BaseModel):
    translations: list[_Item]


class _BadReply(Exception):
    """The model's reply could not be used (the message is fed back to it)."""


class _Transient(Exception):
    """A server error or timeout worth retrying."""


def max_syllables(budget_s: float, syllables_per_s: float = DEFAULT_SYLLABLES_PER_S) -> int:
    """Syllable ceiling for a line: ``max(1, floor(budget_s * syllables_per_s))``."""
    return max(1, math.floor(budget_s * syllables_per_s))


def _extract_json(content: str) -> Any:
    """Parse the JSON object in a reply, tolerating Markdown code fences or text around it."""
    start, end = content.find("{"), content.rfind("}")
    if start < 0 or end < start:
        raise _BadReply("the reply holds no JSON object")
    try:
        return json.loads(content[start : end + 1])
    except json.JSONDecodeError as exc:
        raise _BadReply(f"the reply is not valid JSON ({exc})") from exc


class LlmTranslator(TranslatorBackend):
    """Translate lines with a chat model over an OpenAI-compatible API, fitting duration budgets.

    Keyword-only options:
        base_url: API base URL including ``/v1`` (e.g. ``http://127.0.0.1:8080/v1``); default
            ``$LIPDUB_LLM_BASE_URL``. Requests go to ``<base_url>/chat/completions``.
        model: model name sent to the server; default ``$LIPDUB_LLM_MODEL``.
        api_key: bearer token; default ``$LIPDUB_LLM_API_KEY`` (may be unset for local servers).
        timeout_s: time limit of one HTTP request, in seconds.
        max_retries: further attempts per batch after a malformed reply, an HTTP 429/5xx, a
            timeout or a connection error (so at most ``1 + max_retries`` requests per batch).
        retry_backoff_s: wait before retry n (n >= 1) after an HTTP/network failure:
            ``retry_backoff_s * 2**(n-1)`` seconds. Malformed replies are retried at once.
        batch_size: lines per request.
        temperature: sampling temperature.
        syllables_per_s: speaking rate for the syllable ceiling (see module doc).
        json_mode: send ``response_format={"type": "json_object"}`` (turn off for servers that
            reject it).

    Raises:
        BackendUnavailable: base URL or model not given (names the environment variables), or
            httpx is not installed.
        ConfigError: an invalid option value.
    """

    name = "llm"
    #: Honours ``TranslationRequest.too_long`` (asked for shorter versions by the isochrony loop).
    shortens = True
    #: Honours ``TranslationRequest.terms`` (sent with the line, see the module doc).
    handles_terms = True

    def __init__(
        self,
        *,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        retry_backoff_s: float = 1.0,
        batch_size: int = 40,
        temperature: float = 0.2,
        syllables_per_s: float = DEFAULT_SYLLABLES_PER_S,
        json_mode: bool = True,
    ) -> None:
        self._httpx = require_module("httpx", "httpx")
        self.base_url = (base_url or os.environ.get(ENV_BASE_URL) or "").rstrip("/")
        self.model = model or os.environ.get(ENV_MODEL) or ""
        missing = [var for var, value in ((ENV_BASE_URL, self.base_url), (ENV_MODEL, self.model)) if not value]
        if missing:
            raise BackendUnavailable(
                f"the llm translator is not configured ({' and '.join(missing)} not set)",
                f"set {ENV_BASE_URL} (e.g. http://127.0.0.1:8080/v1) and {ENV_MODEL}, and {ENV_API_KEY} if the server needs a key",
            )
        self.api_key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
        for label, value, ok in (
            ("timeout_s", timeout_s, timeout_s > 0),
            ("max_retries", max_retries, max_retries >= 0),
            ("retry_backoff_s", retry_backoff_s, retry_backoff_s >= 0),
            ("batch_size", batch_size, batch_size >= 1),
            ("temperature", temperature, 0 <= temperature <= 2),
            ("syllables_per_s", syllables_per_s, syllables_per_s > 0),
        ):
            if not ok:
                raise ConfigError(f"invalid llm translator option {label}={value!r}", "see `lipdub translate --help` for valid ranges")
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.retry_backoff_s = float(retry_backoff_s)
        self.batch_size = int(batch_size)
        self.temperature = float(temperature)
        self.syllables_per_s = float(syllables_per_s)
        self.json_mode = json_mode
        self.endpoint = f"{self.base_url}/chat/completions"

    @classmethod
    def check(cls) -> str:
        """Check the configuration and that the server answers (``GET <base_url>/models``, 5 s).

        Raises:
            BackendUnavailable: not configured, or the server cannot be reached.
        """
        translator = cls()
        headers = {"Authorization": f"Bearer {translator.api_key}"} if translator.api_key else {}
        try:
            resp = translator._httpx.get(f"{translator.base_url}/models", headers=headers, timeout=5.0)
        except translator._httpx.HTTPError as exc:
            raise BackendUnavailable(f"LLM server {translator.base_url} cannot be reached ({exc})", f"start the server or fix {ENV_BASE_URL}") from exc
        return f"model {translator.model} at {translator.base_url} (server answered HTTP {resp.status_code})"

    def supports(self, source: Language, target: Language) -> bool:
        """Any pair: whether the model translates it well is up to the model."""
        return True

    def _messages(self, lines: list[dict], source: Language, target: Language) -> list[dict]:
        system = SYSTEM_PROMPT.format(source=source.name, target=target.name, rate=self.syllables_per_s)
        user = json.dumps(
            {"source_language": source.name, "target_language": target.name, "lines": lines}, ensure_ascii=False
        )
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def _post(self, client, messages: list[dict]) -> str:
        body: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": self.temperature}
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        httpx = self._httpx
        try:
            resp = client.post(self.endpoint, json=body)
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            raise _Transient(f"HTTP {resp.status_code}: {resp.text[:200]}")
        if resp.status_code >= 400:
            raise StageFailed(
                f"translate: LLM server refused the request (HTTP {resp.status_code}: {resp.text[:200]})",
                f"check {ENV_BASE_URL} (it must end in /v1), {ENV_MODEL} and {ENV_API_KEY}",
            )
        try:
            content = resp.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise _BadReply(f"the server's response is not a chat completion ({exc!r})") from exc
        if not isinstance(content, str):
            raise _BadReply("the chat completion has no text content")
        return content

    @staticmethod
    def _parse(content: str, ids: list[int]) -> dict[int, str]:
        try:
            reply = _Reply.model_validate(_extract_json(content))
        except ValidationError as exc:
            raise _BadReply(f"the JSON does not match the schema: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc
        got = [item.id for item in reply.translations]
        if sorted(got) != sorted(ids):
            missing = sorted(set(ids) - set(got))
            extra = sorted(set(got) - set(ids))
            dup = sorted({i for i in got if got.count(i) > 1})
            raise _BadReply(f"the ids do not match the lines (missing {missing}, unexpected {extra}, repeated {dup})")
        return {item.id: " ".join(item.text.split()) for item in reply.translations}

    def _translate_batch(self, client, lines: list[dict], source: Language, target: Language) -> dict[int, str]:
        ids = [line["id"] for line in lines]
        base = self._messages(lines, source, target)
        messages = base
        failures = 0
        while True:
            content: str | None = None
            try:
                content = self._post(client, messages)
                return self._parse(content, ids)
            except _Transient as exc:
                failures += 1
                error = str(exc)
                if failures > self.max_retries:
                    break
                wait_s = self.retry_backoff_s * 2 ** (failures - 1)
                logger.warning("LLM request failed (%s); retry %d/%d in %.1f s", error, failures, self.max_retries, wait_s)
                time.sleep(wait_s)
            except _BadReply as exc:
                failures += 1
                error = str(exc)
                if failures > self.max_retries:
                    break
                logger.warning("LLM reply unusable (%s); retry %d/%d", error, failures, self.max_retries)
                feedback = f"Your reply was invalid: {error}. Reply again with JSON only, one entry per line id: {ids}."
                previous = [{"role": "assistant", "content": content}] if content is not None else []
                messages = base + previous + [{"role": "user", "content": feedback}]
        raise StageFailed(
            f"translate: the LLM gave no usable reply after {1 + self.max_retries} attempts (last: {error})",
            "check the server and model (a stronger model follows the JSON format better), or raise max_retries",
        )

    def _add_context(self, lines: list[dict], requests: list[TranslationRequest]) -> None:
        """``context_before`` on the first line of each batch, ``context_after`` on the last."""
        for start in range(0, len(lines), self.batch_size):
            batch = lines[start : start + self.batch_size]
            first, last = requests[batch[0]["id"]], requests[batch[-1]["id"]]
            if first.context_before:
                batch[0]["context_before"] = " ".join(first.context_before.split())
            if last.context_after:
                batch[-1]["context_after"] = " ".join(last.context_after.split())

    def translate(self, requests: list[TranslationRequest], source: Language, target: Language) -> list[str]:
        """Translate lines in batches of ``batch_size``, asking each to fit its duration budget.

        Empty or whitespace-only lines give ``""`` without being sent. Line ids are the request
        indexes. ``terms`` and the context go with the line (module doc); ``syllables_per_s`` of a
        request replaces the translator's rate in its syllable ceiling.

        Returns:
            One non-empty string per non-empty request, same order (whitespace collapsed).

        Raises:
            StageFailed: no valid reply within ``1 + max_retries`` attempts for a batch, or the
                server refused the request (HTTP 4xx other than 429).
        """
        out = [""] * len(requests)
        lines = []
        for i, req in enumerate(requests):
            text = " ".join(req.text.split())
            if not text:
                continue
            line: dict[str, Any] = {"id": i, "text": text}
            if req.duration_budget_s is not None:
                line["budget_s"] = round(float(req.duration_budget_s), 2)
                line["max_syllables"] = max_syllables(req.duration_budget_s, req.syllables_per_s or self.syllables_per_s)
            if req.too_long:
                line["previous_too_long"] = " ".join(req.too_long.split())
            if req.terms:
                line["terms"] = {t.source: t.target for t in req.terms}
            lines.append(line)
        self._add_context(lines, requests)
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        with self._httpx.Client(timeout=self.timeout_s, headers=headers) as client:
            for start in range(0, len(lines), self.batch_size):
                batch = lines[start : start + self.batch_size]
                for i, text in self._translate_batch(client, batch, source, target).items():
                    out[i] = text
        logger.info("llm %s translated %d lines %s->%s", self.model, len(lines), source.code, target.code)
        return out
