"""What the Kokoro voice choice knows of the voices before it speaks: the five packs and the blend bank.

Kokoro-82M's voice is a style vector (per token count, ``[510, 256]``): dimensions 0-127 condition
the decoder (timbre), 128-255 the prosody predictor. A blend (:func:`blend_style`) is an affine
combination of the packs, one weight vector for the timbre half and one for the prosody half (weights
summing to 1, each in [:data:`MIN_WEIGHT`, :data:`MAX_WEIGHT`]).

* :func:`pack_measures`: each pack's d-vector (resemblyzer), median F0 (Praat) and syllables/s on the
  language's search sentence (:data:`SEARCH_TEXTS`), measured once per machine and language;
* :func:`blend_bank`: :data:`BANK_SIZE` fixed blends of the packs (:func:`bank_weights`), each spoken
  and measured the same way ahead of time (shipped in ``data/kokoro-blends-<lang>.json``, written by
  scripts/kokoro_blend_bank.py; else measured once per machine and cached), so the voices stage
  (:func:`lipdub.backends.tts.kokoro_voice.adapt_voice`) picks a starting voice with no synthesis;
* :class:`Scorer`: speaks a candidate style and embeds it (what the search and the measurements use).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...audio import resample
from ...errors import ConfigError
from ...languages import Language
from ...models import model_dir
from ...voice.params import count_syllables, measure_voice
from ...voice.profile import embed_speech
from .kokoro_model import TIMBRE_DIMS

log = logging.getLogger(__name__)

#: Search sentence per language (phonetically varied, about 3.5 s with the stock packs).
SEARCH_TEXTS = {
    "es": "El viernes fuimos al mercado a comprar pan, queso y manzanas.",
    "fr": "Vendredi, nous avons acheté du pain, du fromage et des pommes.",
    "it": "Venerdì siamo andati al mercato a comprare pane e formaggio.",
    "pt": "Na sexta-feira fomos ao mercado comprar pão, queijo e maçãs.",
    "de": "Am Freitag haben wir auf dem Markt Brot, Käse und Äpfel gekauft.",
    "en": "On Friday we went to the market to buy bread, cheese and apples.",
    "ja": "金曜日に市場でパンとチーズとりんごを買いました。",
}
MIN_WEIGHT, MAX_WEIGHT = -0.5, 1.5
#: Version of the pack figures' cache (part of :func:`pack_cache_file`'s key).
PACK_FORMAT = 5
#: Blends in the bank (:func:`blend_bank`) and the seed of their weights. 64 blends of the search
#: sentence (about 5 s of speech each) cost about 160 s of CPU to measure once; at run time the bank's
#: nearest blend replaces the 8-synthesis search (bench/voice_search_budget.py, README "Voices").
BANK_SIZE = 64
BANK_SEED = 0
#: Version of the bank's measurements (part of its key; bump when what a row holds changes).
BANK_FORMAT = 1
#: Concentration of the Dirichlet draws of the bank's weights (< 1: most blends near one or two packs)
#: and the largest extrapolation factor away from the packs' mean (weights then clipped to
#: [:data:`MIN_WEIGHT`, :data:`MAX_WEIGHT`]).
BANK_DIRICHLET_ALPHA = 0.6
BANK_MAX_EXTRAPOLATION = 0.8
#: Where the measured banks are shipped (one JSON per language, written by scripts/kokoro_blend_bank.py).
BANK_DATA_DIR = Path(__file__).resolve().parent / "data"


def blend_style(packs: dict[str, np.ndarray], timbre: dict[str, float], prosody: dict[str, float]) -> np.ndarray:
    """Affine blend of ``packs`` (name -> ``(510, 256)``): timbre dims from ``timbre`` weights, prosody from ``prosody``.

    Raises:
        ConfigError: a weight names a pack that is not in ``packs``.
    """
    unknown = sorted((set(timbre) | set(prosody)) - set(packs))
    if unknown:
        raise ConfigError(f"kokoro voice weights name unknown packs: {', '.join(unknown)}", f"packs: {', '.join(sorted(packs))}")
    out = np.zeros_like(next(iter(packs.values())))
    for name, w in timbre.items():
        out[:, :TIMBRE_DIMS] += w * packs[name][:, :TIMBRE_DIMS]
    for name, w in prosody.items():
        out[:, TIMBRE_DIMS:] += w * packs[name][:, TIMBRE_DIMS:]
    return out.astype(np.float32)


class Scorer:
    """Synthesizes candidate styles (``KokoroTts.synthesize_style``) and embeds them; counts syntheses."""

    def __init__(self, tts, language: Language) -> None:
        self.tts, self.language = tts, language
        self.count = 0

    def speech(self, style: np.ndarray, text: str):
        self.count += 1
        return self.tts.synthesize_style(text, self.language, style, voice_name="candidate")

    def embed(self, style: np.ndarray, text: str) -> tuple[np.ndarray, float | None]:
        """``(d-vector, syllables/s)`` of ``text`` spoken with ``style``."""
        s = self.speech(style, text)
        return embed_speech(resample(s.samples, s.sample_rate_hz, 16000)), speech_rate(text, s, self.language.code)


_pack_cache: dict[str, dict[str, tuple[np.ndarray, float, float | None]]] = {}


def pack_cache_file(packs: dict[str, np.ndarray], language: str) -> Path:
    """Where :func:`pack_measures` keeps its figures on disk: ``<model dir>/../kokoro/packs-<lang>-<hash>.json``
    (the hash covers the packs, the search sentence and :data:`PACK_FORMAT`)."""
    h = hashlib.sha256(f"{PACK_FORMAT}|rate|{SEARCH_TEXTS[language]}".encode())
    for name in sorted(packs):
        h.update(name.encode() + packs[name].tobytes())
    return model_dir().parent / "kokoro" / f"packs-{language}-{h.hexdigest()[:16]}.json"


def stored_pack_measures(packs: dict[str, np.ndarray], language: str) -> dict[str, tuple[np.ndarray, float, float | None]] | None:
    """:func:`pack_measures`' figures when they need no synthesis: kept in this process, in the shipped
    blend bank (when current) or in the machine's cache (:func:`pack_cache_file`); None: not measured yet."""
    if language in _pack_cache:
        return _pack_cache[language]
    try:
        shipped = read_bank(packs, language, bank_files(language)[:1])
        data = shipped["packs"] if shipped is not None else json.loads(pack_cache_file(packs, language).read_text(encoding="utf-8"))
        return {n: (np.asarray(data[n]["embedding"], np.float32), float(data[n]["f0_median_hz"]), data[n]["syllables_per_s"])
                for n in sorted(packs)}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def pack_measures(scorer: Scorer, packs: dict[str, np.ndarray], language: str) -> dict[str, tuple[np.ndarray, float, float | None]]:
    """Per pack: ``(d-vector, median F0 Hz, syllables/s)`` of the search sentence: from the shipped
    blend bank (its ``packs``) when it is current, else measured once per machine and language (kept
    in :func:`pack_cache_file`); then kept per process."""
    if language not in _pack_cache:
        out = stored_pack_measures(packs, language)
        if out is None:
            path = pack_cache_file(packs, language)
            out = {}
            for name in sorted(packs):
                s = scorer.speech(packs[name], SEARCH_TEXTS[language])
                out[name] = (embed_speech(resample(s.samples, s.sample_rate_hz, 16000)), measure_voice(s.samples, s.sample_rate_hz).f0_median_hz,
                             speech_rate(SEARCH_TEXTS[language], s, language))
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps({n: {"embedding": [float(x) for x in e], "f0_median_hz": f, "syllables_per_s": r}
                                           for n, (e, f, r) in out.items()}),
                               encoding="utf-8")
                os.replace(tmp, path)
            except OSError as exc:  # a read-only home: measured again next time
                log.warning("kokoro pack measurements not cached (%s)", exc)
        _pack_cache[language] = out
    return _pack_cache[language]


def bank_weights(n_packs: int, size: int = BANK_SIZE, seed: int = BANK_SEED) -> list[tuple[np.ndarray, np.ndarray]]:
    """The bank's ``size`` (timbre, prosody) weight vectors over ``n_packs`` packs (sorted by name), float64
    ``(n_packs,)`` each, summing to 1 within [:data:`MIN_WEIGHT`, :data:`MAX_WEIGHT`]: a Dirichlet draw
    (:data:`BANK_DIRICHLET_ALPHA`) pushed away from the packs' mean by a factor in
    [1, 1 + :data:`BANK_MAX_EXTRAPOLATION`]; even rows use the same weights for both halves, odd rows
    an independent prosody draw. Deterministic for a seed."""
    rng = np.random.default_rng(seed)

    def draw() -> np.ndarray:
        w = rng.dirichlet(np.full(n_packs, BANK_DIRICHLET_ALPHA))
        w = w + (w - w.mean()) * rng.uniform(0.0, BANK_MAX_EXTRAPOLATION)
        w = np.clip(w, MIN_WEIGHT, MAX_WEIGHT)
        return w + (1.0 - w.sum()) / w.size

    out = []
    for k in range(size):
        wt = draw()
        out.append((wt, wt.copy() if k % 2 == 0 else draw()))
    return out


@dataclass(frozen=True)
class BankBlend:
    """One measured blend of the bank: weights per pack name, the d-vector (float32 ``(256,)``) and
    median F0 (Hz) of the search sentence spoken with it, and its syllables/s (None: no timings)."""

    timbre: dict[str, float]
    prosody: dict[str, float]
    embedding: np.ndarray
    f0_median_hz: float
    syllables_per_s: float | None


def blend_bank_key(packs: dict[str, np.ndarray], language: str, size: int = BANK_SIZE, seed: int = BANK_SEED) -> str:
    """SHA-256 (16 hex) of what a bank's figures depend on: the packs, the search sentence, the weights' draw."""
    h = hashlib.sha256(f"bank|{BANK_FORMAT}|{SEARCH_TEXTS[language]}|{size}|{seed}|{BANK_DIRICHLET_ALPHA}|"
                       f"{BANK_MAX_EXTRAPOLATION}|{MIN_WEIGHT}|{MAX_WEIGHT}".encode())
    for name in sorted(packs):
        h.update(name.encode() + packs[name].tobytes())
    return h.hexdigest()[:16]


_bank_cache: dict[str, list[BankBlend]] = {}


def bank_files(language: str) -> list[Path]:
    """Where a bank is looked for: the shipped ``data/kokoro-blends-<lang>.json``, then the machine's
    cache beside the pack figures (``<model dir>/../kokoro/blends-<lang>.json``)."""
    return [BANK_DATA_DIR / f"kokoro-blends-{language}.json", model_dir().parent / "kokoro" / f"blends-{language}.json"]


def measure_bank(scorer: Scorer, packs: dict[str, np.ndarray], language: str, size: int = BANK_SIZE,
                 seed: int = BANK_SEED) -> dict:
    """Speak the search sentence with every blend of :func:`bank_weights` and measure it; the JSON
    record :func:`blend_bank` reads (``key``, ``names``, ``rows``: timbre, prosody, embedding,
    f0_median_hz, syllables_per_s; ``packs``: the same figures of each pack, as :func:`pack_measures`
    keeps them). ``size`` syntheses (about 2.5 s of CPU each on 2 cores) and those of the packs when
    not measured yet."""
    names = sorted(packs)
    stock = {n: {"embedding": [round(float(x), 5) for x in e], "f0_median_hz": round(f, 2), "syllables_per_s": r}
             for n, (e, f, r) in pack_measures(scorer, packs, language).items()}
    rows = []
    for wt, wp in bank_weights(len(names), size, seed):
        s = scorer.speech(blend_style(packs, dict(zip(names, wt)), dict(zip(names, wp))), SEARCH_TEXTS[language])
        emb = embed_speech(resample(s.samples, s.sample_rate_hz, 16000))
        rows.append({"timbre": [round(float(x), 6) for x in wt], "prosody": [round(float(x), 6) for x in wp],
                     "embedding": [round(float(x), 5) for x in emb],
                     "f0_median_hz": round(measure_voice(s.samples, s.sample_rate_hz).f0_median_hz, 2),
                     "syllables_per_s": speech_rate(SEARCH_TEXTS[language], s, language)})
    return {"key": blend_bank_key(packs, language, size, seed), "language": language, "text": SEARCH_TEXTS[language],
            "names": names, "packs": stock, "rows": rows}


def read_bank(packs: dict[str, np.ndarray], language: str, paths: list[Path]) -> dict | None:
    """The first of ``paths`` holding a bank JSON whose ``key`` is :func:`blend_bank_key` (None: none)."""
    key = blend_bank_key(packs, language)
    for path in paths:
        try:
            got = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(got, dict) and got.get("key") == key:
            return got
    return None


def blend_bank(scorer: Scorer, packs: dict[str, np.ndarray], language: str) -> list[BankBlend]:
    """The measured blend bank of ``language`` (see the module docstring): read from the first of
    :func:`bank_files` whose ``key`` matches :func:`blend_bank_key` (other packs or settings: stale), else
    measured now (:func:`measure_bank`, :data:`BANK_SIZE` syntheses, logged) and cached on the machine.
    Kept per process."""
    if language not in _bank_cache:
        data = read_bank(packs, language, bank_files(language))
        if data is None:
            log.warning("measuring the Kokoro blend bank for %s once on this machine (%d syntheses)", language, BANK_SIZE)
            data = measure_bank(scorer, packs, language)
            path = bank_files(language)[-1]
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps(data), encoding="utf-8")
                os.replace(tmp, path)
            except OSError as exc:  # a read-only home: measured again next time
                log.warning("kokoro blend bank not cached (%s)", exc)
        names = data["names"]
        _bank_cache[language] = [BankBlend(dict(zip(names, r["timbre"])), dict(zip(names, r["prosody"])),
                                           np.asarray(r["embedding"], np.float32), float(r["f0_median_hz"]), r["syllables_per_s"])
                                 for r in data["rows"]]
    return _bank_cache[language]


def speech_rate(text: str, speech, language: str) -> float | None:
    """Syllables of ``text`` (:func:`lipdub.voice.params.count_syllables`) per second of ``speech``'s
    phonemes (first start to last end); None without phoneme timings."""
    ph = speech.phonemes or []
    span = ph[-1].end_s - ph[0].start_s if ph else 0.0
    return round(count_syllables(text, language) / span, 3) if span > 0 else None
