"""TTS backend ``xtts``: Coqui XTTS-v2 voice cloning (package ``coqui-tts``), weights from the user's cache.

XTTS-v2 (Casanova et al. 2024, "XTTS: a Massively Multilingual Zero-Shot Text-to-Speech Model")
clones a voice from a few seconds of reference speech in 17 languages. The adapter uses the model
class directly (``TTS.tts.models.xtts.Xtts``: ``load_checkpoint``, ``get_conditioning_latents``,
``inference(..., speed=rate)``), 24 kHz output. Weights are never downloaded: they are looked up in
an explicit ``model_dir``, ``$LIPDUB_XTTS_DIR``, then Coqui's own cache
(``$TTS_HOME/tts/``, ``$XDG_DATA_HOME/tts/``, ``~/.local/share/tts/``) under
``tts_models--multilingual--multi-dataset--xtts_v2`` (what ``tts --model_name
tts_models/multilingual/multi-dataset/xtts_v2`` downloads), and must hold ``config.json``,
``model.pth`` and ``vocab.json``. The XTTS-v2 weights are under the Coqui Public Model License.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from ...contracts.synthesize import Speech, TtsBackend
from ...errors import ConfigError, MissingWeights
from ...languages import Language
from ...registry import require_module

ENV_DIR = "LIPDUB_XTTS_DIR"
MODEL_DIR_NAME = "tts_models--multilingual--multi-dataset--xtts_v2"
REQUIRED_FILES = ("config.json", "model.pth", "vocab.json")
#: Languages of XTTS-v2 (its config's ``languages``), ISO 639-1 except zh-cn.
LANGUAGES = ("en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "zh", "ja", "hu", "ko", "hi")
OUTPUT_RATE_HZ = 24000
RATE_LIMITS = (0.5, 2.0)


def candidate_dirs(model_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where the XTTS-v2 weights are looked for, in order (see the module docstring)."""
    out = []
    if model_dir is not None:
        return [Path(model_dir)]
    if os.environ.get(ENV_DIR):
        out.append(Path(os.environ[ENV_DIR]))
    for base in (os.environ.get("TTS_HOME"), os.environ.get("XDG_DATA_HOME")):
        if base:
            out.append(Path(base) / "tts" / MODEL_DIR_NAME)
    out.append(Path.home() / ".local" / "share" / "tts" / MODEL_DIR_NAME)
    return out


def find_model_dir(model_dir: str | os.PathLike | None = None) -> Path:
    """The first candidate directory holding every required file.

    Raises:
        MissingWeights: none does; the message lists where it looked and the hint how to supply them.
    """
    dirs = candidate_dirs(model_dir)
    for d in dirs:
        if all((d / f).is_file() for f in REQUIRED_FILES):
            return d
    raise MissingWeights(
        f"XTTS-v2 weights ({', '.join(REQUIRED_FILES)}) not found in {', '.join(str(d) for d in dirs)}",
        f"download them once with `tts --model_name tts_models/multilingual/multi-dataset/xtts_v2 --list_language_idxs` "
        f"(coqui-tts, accepting the CPML licence), or point {ENV_DIR} at a directory holding them",
    )


class XttsTts(TtsBackend):
    """XTTS-v2 cloning TTS. ``voice`` for :meth:`synthesize` is a reference WAV path (:meth:`clone`).

    Keyword-only options: ``model_dir`` (directory of the weights, see :func:`find_model_dir`).

    Raises:
        BackendUnavailable: coqui-tts (or torch) is not installed (names the package).
        MissingWeights: the weights are not found (names the files and where to put them).
    """

    name = "xtts"
    clones = True
    max_rate = RATE_LIMITS[1]

    def __init__(self, *, model_dir: str | os.PathLike | None = None) -> None:
        require_module("torch", "torch")
        require_module("TTS", "coqui-tts")
        self.model_dir = find_model_dir(model_dir)
        self._model = None
        self._latents: dict[str, tuple] = {}
        self._lock = threading.Lock()

    @classmethod
    def check(cls) -> str:
        """Check the package and the weights (without loading the model)."""
        tts = cls()
        return f"XTTS-v2 weights in {tts.model_dir}"

    def supports(self, language: Language) -> bool:
        return language.code in LANGUAGES

    def _load(self):
        if self._model is None:
            from TTS.tts.configs.xtts_config import XttsConfig
            from TTS.tts.models.xtts import Xtts

            config = XttsConfig()
            config.load_json(str(self.model_dir / "config.json"))
            model = Xtts.init_from_config(config)
            model.load_checkpoint(config, checkpoint_dir=str(self.model_dir), eval=True)
            self._model = model
        return self._model

    def clone(self, name: str, reference_wav: str | os.PathLike) -> str:
        """XTTS clones at synthesis time from the clip itself: returns the clip's path as the voice.

        Raises:
            ConfigError: the clip does not exist.
        """
        ref = Path(reference_wav)
        if not ref.is_file():
            raise ConfigError(f"reference clip {ref} does not exist", "re-run the profiles stage")
        return str(ref.resolve())

    def synthesize(self, text: str, language: Language, voice: str | None = None, rate: float = 1.0) -> Speech:
        """Speak ``text`` in the voice of the reference clip ``voice`` (a WAV path).

        Args:
            rate: XTTS ``speed`` (length scale 1/speed), 0.5..2.0.

        Raises:
            ConfigError: unsupported language, no reference clip, empty text or bad rate.
        """
        if not text.strip():
            raise ConfigError("nothing to speak: the text is empty", "give the line some text")
        if language.code not in LANGUAGES:
            raise ConfigError(f"XTTS-v2 does not speak {language.name} ({language.code})", f"use one of {', '.join(LANGUAGES)}")
        if not voice or not Path(voice).is_file():
            raise ConfigError("XTTS-v2 needs a reference clip of the voice to clone", "run with speaker profiles (the default) or give --voice PATH.wav")
        if not RATE_LIMITS[0] <= rate <= RATE_LIMITS[1]:
            raise ConfigError(f"xtts rate {rate} out of range", f"use {RATE_LIMITS[0]}..{RATE_LIMITS[1]}")
        with self._lock:
            model = self._load()
            if voice not in self._latents:
                self._latents[voice] = model.get_conditioning_latents(audio_path=[voice])
            gpt_latent, speaker_emb = self._latents[voice]
            out = model.inference(text, "zh-cn" if language.code == "zh" else language.code, gpt_latent, speaker_emb, speed=float(rate))
        samples = np.asarray(out["wav"], dtype=np.float32).reshape(-1)
        return Speech(samples=samples, sample_rate_hz=OUTPUT_RATE_HZ, phonemes=None, voice=voice)
