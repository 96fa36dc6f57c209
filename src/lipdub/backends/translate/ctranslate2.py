"""Translate backend ``ctranslate2``: neural MT (NLLB-200, M2M-100, OPUS-MT, Argos) on CPU.

CTranslate2 (https://opennmt.net/CTranslate2, ``Translator.translate_batch``) runs the user's
converted models; SentencePiece (Kudo & Richardson 2018) cuts the text into the model's pieces.
Models are found as :mod:`lipdub.backends.translate.ct2_models` says; per family
(:mod:`lipdub.backends.translate.ct2_codes`) the source is
``[src_lang] + pieces + ["</s>"]`` with decoding started from ``[tgt_lang]`` (NLLB, M2M-100),
``[">>spa<<"] + pieces + ["</s>"]`` (multi-target Marian; single-pair Marian without the token), or
the bare pieces with the package's ``target_prefix`` (Argos).

Length: each line gets ``num_hypotheses`` candidates (beam search, or random sampling with
``sampling_topk`` > 1); each candidate's spoken duration is estimated
(:func:`lipdub.timing.isochrony.estimate_duration_s`, the speaker's rate) and the best-scoring one
that fits the line's budget is taken (:func:`lipdub.translation.nbest.choose_hypothesis`). A
re-translation request (``too_long``) searches twice as many candidates and takes one estimated
shorter than the text that did not fit. Scores are mean log-probabilities per generated token
(the end token included, the forced prefix excluded).

Terms (``TranslationRequest.terms``): a glossary target that differs from its source is written into
the source in place of the source term (a foreign word in the source is copied by NMT models far
more often than it is translated); names and ``keep`` terms are left in place. Candidates that hold
every target are preferred.

Context (``context=True``): a line with ``context_before`` is translated as
``context_before + text``, decoding forced through the translation of ``context_before``
(``target_prefix``), and only what the model adds after it is kept: the previous line steers
pronouns, gender and register. Lines are then decoded one at a time. When the model adds
nothing after the prefix, the line is translated without context (the record says so).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from typing import Any

from ...contracts.translate import Hypothesis, TranslationRequest, TranslationResult, TranslatorBackend
from ...errors import BackendUnavailable, ConfigError, MissingWeights
from ...languages import Language
from ...models import model_dir
from ...registry import require_module
from ...timing.isochrony import estimate_duration_s
from ...translation.nbest import choose_hypothesis
from ...translation.terms import find_terms
from . import ct2_codes as codes
from .ct2_models import MtModel, available_mt_models, resolve_explicit

logger = logging.getLogger(__name__)

_SPECIAL = frozenset({"<s>", "</s>", "<pad>", "<unk>", "<mask>"})


@dataclass
class _Encoded:
    source: list[str]
    prefix: list[str]


class _Engine:
    """One loaded model: CTranslate2 translator + SentencePiece, with the family's token layout."""

    def __init__(self, model: MtModel, ct2: Any, spm: Any, options: dict) -> None:
        self.model = model
        try:
            self.translator = ct2.Translator(str(model.path), **options)
        except (RuntimeError, ValueError) as exc:
            raise MissingWeights(f"CTranslate2 cannot load {model.path} ({exc})",
                                 "re-convert the model with the installed ctranslate2 (ct2-transformers-converter)") from exc
        self.sp_source = spm.SentencePieceProcessor(model_file=str(model.source_spm))
        self.sp_target = spm.SentencePieceProcessor(model_file=str(model.target_spm)) \
            if model.target_spm != model.source_spm else self.sp_source
        self.language_tokens = frozenset(model.language_tokens)

    def lang_prefix(self, target: Language) -> list[str]:
        if self.model.family in (codes.NLLB, codes.M2M100):
            return [self.model.target_token(target)]
        if self.model.family == codes.ARGOS and self.model.target_prefix:
            return [self.model.target_prefix]
        return []

    def encode(self, text: str, source: Language, target: Language, context: tuple[str, str] | None = None) -> _Encoded:
        """Source tokens and forced target prefix for ``text`` (``context``: source, translation)."""
        src_text = f"{context[0]} {text}" if context else text
        pieces = self.sp_source.encode(src_text, out_type=str)
        family = self.model.family
        if family in (codes.NLLB, codes.M2M100):
            tokens = [self.model.source_token(source)] + pieces + ["</s>"]
        elif family == codes.MARIAN:
            token = self.model.target_token(target)
            tokens = ([token] if token else []) + pieces + ["</s>"]
        else:
            tokens = pieces
        prefix = self.lang_prefix(target)
        if context:
            prefix = prefix + self.sp_target.encode(context[1], out_type=str)
        return _Encoded(tokens, prefix)

    def decode(self, tokens: list[str]) -> str:
        """Text of generated tokens, special and language tokens dropped."""
        keep = [t for t in tokens if t not in _SPECIAL and t not in self.language_tokens and not (t.startswith(">>") and t.endswith("<<"))]
        return " ".join(self.sp_target.decode(keep).split())


class Ctranslate2Translator(TranslatorBackend):
    """Translate lines with a CTranslate2 model, choosing among n-best candidates by slot length.

    Keyword-only options:
        model: an explicit model (a CTranslate2 model directory, an Argos package directory or an
            ``.argosmodel`` file, installed into ``$LIPDUB_MODEL_DIR/argos/``); default: every
            model found (:func:`lipdub.backends.translate.ct2_models.available_mt_models`), the
            first one covering the pair in resolution order.
        device: ``"cpu"`` or ``"cuda"``.
        compute_type: CTranslate2 compute type (``"default"``: as converted; ``"int8"`` is faster on CPU).
        intra_threads: CPU threads per translation (0: CTranslate2's default).
        beam_size: beam width (>= ``num_hypotheses``; raised to it).
        num_hypotheses: candidates per line, >= 1.
        length_penalty: CTranslate2's exponential length penalty of beam search.
        sampling_topk: > 1 draws the candidates by top-k random sampling instead of beam search.
        sampling_temperature: temperature of that sampling (> 0).
        seed: random seed of the sampling (None: CTranslate2's own).
        fit_ratio: a candidate fits when its estimated duration <= ``fit_ratio`` x the budget.
        context: translate each line after the previous one (module doc).
        max_decoding_ratio: at most this many target tokens per source token (plus 10).
        batch_size: lines per ``translate_batch`` call.

    Raises:
        BackendUnavailable: ctranslate2 or sentencepiece is not installed.
        MissingWeights: the explicit ``model`` is missing or unusable.
        ConfigError: an option out of range.
    """

    name = "ctranslate2"
    #: Honours ``TranslationRequest.too_long`` (more candidates, a shorter one taken).
    shortens = True
    #: Honours ``TranslationRequest.terms`` (module doc).
    handles_terms = True

    def __init__(self, *, model: str | os.PathLike | None = None, device: str = "cpu", compute_type: str = "default",
                 intra_threads: int = 0, beam_size: int = 5, num_hypotheses: int = 4, length_penalty: float = 1.0,
                 sampling_topk: int = 0, sampling_temperature: float = 1.0, seed: int | None = None,
                 fit_ratio: float = 1.0, context: bool = False, max_decoding_ratio: float = 3.0, batch_size: int = 16) -> None:
        self._ct2 = require_module("ctranslate2", "ctranslate2")
        self._spm = require_module("sentencepiece", "sentencepiece")
        for label, value, ok in (
            ("intra_threads", intra_threads, intra_threads >= 0), ("beam_size", beam_size, beam_size >= 1),
            ("num_hypotheses", num_hypotheses, num_hypotheses >= 1), ("length_penalty", length_penalty, length_penalty >= 0),
            ("sampling_topk", sampling_topk, sampling_topk >= 0), ("sampling_temperature", sampling_temperature, sampling_temperature > 0),
            ("fit_ratio", fit_ratio, fit_ratio > 0), ("max_decoding_ratio", max_decoding_ratio, max_decoding_ratio > 0),
            ("batch_size", batch_size, batch_size >= 1), ("device", device, device in ("cpu", "cuda", "auto")),
        ):
            if not ok:
                raise ConfigError(f"invalid ctranslate2 translator option {label}={value!r}", "see the README, Translation for the options")
        self.options = {"device": device, "compute_type": compute_type, "intra_threads": intra_threads}
        self.beam_size, self.num_hypotheses = max(beam_size, num_hypotheses), num_hypotheses
        self.length_penalty = float(length_penalty)
        self.sampling_topk, self.sampling_temperature, self.seed = sampling_topk, float(sampling_temperature), seed
        self.fit_ratio, self.context = float(fit_ratio), bool(context)
        self.max_decoding_ratio, self.batch_size = float(max_decoding_ratio), batch_size
        if model is not None:
            found = resolve_explicit(model)
            if found.problem:
                raise MissingWeights(f"translation model {found.path} cannot be used: {found.problem}", "see the README, Translation")
            self.models = [found]
        else:
            self.models = available_mt_models()
        self._engines: dict[str, _Engine] = {}

    @classmethod
    def check(cls) -> str:
        """The models found and the pairs they cover.

        Raises:
            BackendUnavailable: ctranslate2 or sentencepiece missing.
            MissingWeights: no usable translation model found.
        """
        require_module("ctranslate2", "ctranslate2")
        require_module("sentencepiece", "sentencepiece")
        usable = [m for m in available_mt_models() if m.problem is None]
        if not usable:
            raise MissingWeights(
                f"no CTranslate2 translation model found (looked in {model_dir()}, the Hugging Face cache and Argos's packages)",
                "put a converted NLLB / OPUS-MT model in $LIPDUB_MODEL_DIR or install an .argosmodel file (README, Translation)")
        return "; ".join(f"{m.name} ({m.languages_text()})" for m in usable)

    @classmethod
    def auto_supports(cls, source: Language, target: Language, **_: object) -> bool:
        """``--translator auto`` takes ctranslate2 when a model found (``$LIPDUB_MODEL_DIR``, the
        Hugging Face cache, Argos packages) covers ``source`` -> ``target``."""
        try:
            return cls().supports(source, target)
        except (BackendUnavailable, MissingWeights):
            return False

    def model_for(self, source: Language, target: Language) -> MtModel | None:
        """The first model (resolution order) that covers ``source`` -> ``target``, or None."""
        return next((m for m in self.models if m.covers(source, target)), None)

    def supports(self, source: Language, target: Language) -> bool:
        """True when a model found covers the pair."""
        return self.model_for(source, target) is not None

    def _engine(self, model: MtModel) -> _Engine:
        key = str(model.path)
        if key not in self._engines:
            self._engines[key] = _Engine(model, self._ct2, self._spm, self.options)
        return self._engines[key]

    def translate(self, requests: list[TranslationRequest], source: Language, target: Language) -> list[str]:
        """One translation per request (the chosen candidate); see :meth:`translate_detailed`."""
        return [r.text for r in self.translate_detailed(requests, source, target)]

    def translate_detailed(self, requests: list[TranslationRequest], source: Language, target: Language) -> list[TranslationResult]:
        """Translate, choosing per line among ``num_hypotheses`` candidates (module doc).

        Empty or whitespace-only lines give ``""`` without being sent.

        Returns:
            One :class:`TranslationResult` per request, same order, with every candidate.

        Raises:
            ConfigError: no model found covers the pair (the hint lists what was found).
        """
        model = self.model_for(source, target)
        if model is None:
            found = "; ".join(m.describe() for m in self.models) or "none"
            raise ConfigError(
                f"no CTranslate2 translation model covers {source.code}->{target.code} ({source.name} to {target.name})",
                f"add an NLLB-200 model or an OPUS-MT/Argos model for the pair (README, Translation); models found: {found}")
        engine = self._engine(model)
        if self.seed is not None:
            self._ct2.set_random_seed(self.seed)
        texts = [" ".join(r.text.split()) for r in requests]
        out = [TranslationResult("") for _ in requests]
        todo = [i for i, t in enumerate(texts) if t]
        if self.context:
            done: dict[str, str] = {}
            for i in todo:
                out[i] = self._translate_in_context(engine, replace(requests[i], text=texts[i]), source, target, done)
                done[texts[i]] = out[i].text
        else:
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start:start + self.batch_size]
                batch = [replace(requests[i], text=texts[i]) for i in chunk]
                for i, res in zip(chunk, self._translate_batch(engine, batch, source, target, [None] * len(batch))):
                    out[i] = res
        logger.info("ctranslate2 %s translated %d lines %s->%s", model.name, len(todo), source.code, target.code)
        return out

    def _translate_in_context(self, engine: _Engine, req: TranslationRequest, source: Language, target: Language,
                              done: dict[str, str]) -> TranslationResult:
        before = " ".join((req.context_before or "").split())
        if not before:
            return self._translate_batch(engine, [req], source, target, [None])[0]
        if before not in done:
            done[before] = self._translate_batch(engine, [TranslationRequest(before)], source, target, [None])[0].text
        if not done[before]:
            return self._translate_batch(engine, [req], source, target, [None])[0]
        res = self._translate_batch(engine, [req], source, target, [(before, done[before])])[0]
        if res.text:
            return res
        plain = self._translate_batch(engine, [req], source, target, [None])[0]
        return replace(plain, choice=plain.choice + " (without context: nothing after the context prefix)")

    def _translate_batch(self, engine: _Engine, batch: list[TranslationRequest], source: Language, target: Language,
                         contexts: list[tuple[str, str] | None]) -> list[TranslationResult]:
        """One ``translate_batch`` call; shortening requests get twice the candidates."""
        results: list[TranslationResult | None] = [None] * len(batch)
        for wide in (False, True):
            idx = [k for k, r in enumerate(batch) if bool(r.too_long) == wide]
            if not idx:
                continue
            n = self.num_hypotheses * (2 if wide else 1)
            encoded = [engine.encode(_inject_terms(batch[k]), source, target, contexts[k]) for k in idx]
            raw = engine.translator.translate_batch(
                [e.source for e in encoded], target_prefix=[e.prefix or None for e in encoded], **self._search_options(n, encoded))
            for k, e, r in zip(idx, encoded, raw):
                results[k] = self._choose(engine, batch[k], e, r, target)
        return results  # type: ignore[return-value]

    def _search_options(self, n: int, encoded: list[_Encoded]) -> dict:
        longest = max(len(e.source) for e in encoded)
        opts = dict(num_hypotheses=n, return_scores=True, disable_unk=True, length_penalty=self.length_penalty,
                    max_decoding_length=int(self.max_decoding_ratio * longest) + 10 + max(len(e.prefix) for e in encoded),
                    max_batch_size=self.batch_size)
        if self.sampling_topk > 1:
            opts.update(beam_size=1, sampling_topk=self.sampling_topk, sampling_temperature=self.sampling_temperature)
        else:
            opts.update(beam_size=max(self.beam_size, n))
        return opts

    def _choose(self, engine: _Engine, req: TranslationRequest, enc: _Encoded, raw: Any, target: Language) -> TranslationResult:
        by_text: dict[str, float] = {}
        for tokens, score in zip(raw.hypotheses, raw.scores):
            generated = tokens[len(enc.prefix):] if tokens[:len(enc.prefix)] == enc.prefix else tokens
            text = engine.decode(generated)
            # CTranslate2 divides the sum of log-probabilities by (len(tokens) + 1) ** length_penalty,
            # prefix included: undo it and divide by the generated tokens (+1 for the end token).
            per_token = score * (len(tokens) + 1) ** self.length_penalty / (len(generated) + 1)
            wordless = not any(ch.isalpha() for ch in text) and any(ch.isalpha() for ch in req.text)
            if text and not wordless and (text not in by_text or per_token > by_text[text]):
                by_text[text] = per_token
        if not by_text:
            return TranslationResult("", (), None, "no candidate")
        hyps = tuple(Hypothesis(t, s, estimate_duration_s(t, req.syllables_per_s, target.code)) for t, s in by_text.items())
        too_long_s = estimate_duration_s(req.too_long, req.syllables_per_s, target.code) if req.too_long else None
        k, why = choose_hypothesis(hyps, req.duration_budget_s, fit_ratio=self.fit_ratio,
                                   required=[t.target for t in req.terms], shorter_than_s=too_long_s)
        return TranslationResult(hyps[k].text, hyps, k, why)


def _inject_terms(req: TranslationRequest) -> str:
    """``req.text`` with each glossary source term replaced by its target (module doc)."""
    spans = [s for s in find_terms(req.text, [t for t in req.terms if t.target != t.source])]
    out, pos = [], 0
    for s in spans:
        out += [req.text[pos:s.start], s.term.target]
        pos = s.end
    return "".join(out + [req.text[pos:]])
