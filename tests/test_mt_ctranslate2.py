"""Translate backend ``ctranslate2`` on tiny random models built offline (tests/mt_utils.py): model
discovery and language codes per family, tokens sent, n-best choice by slot length, shortening,
terms, context, Argos packages, errors."""

from __future__ import annotations

import json
import zipfile

import pytest

from lipdub.contracts.translate import TranslatorBackend

pytest.importorskip("ctranslate2")
pytest.importorskip("sentencepiece")
pytest.importorskip("transformers")

from mt_utils import build_argos_package, build_tiny_ct2  # noqa: E402

from lipdub.backends.translate import ct2_codes as codes  # noqa: E402
from lipdub.backends.translate.ct2_models import available_mt_models, install_argos_package  # noqa: E402
from lipdub.contracts.translate import TRANSLATORS, Term, TranslationRequest  # noqa: E402
from lipdub.errors import ConfigError, InputError, MissingWeights  # noqa: E402
from lipdub.languages import parse_language  # noqa: E402
from lipdub.timing.isochrony import estimate_duration_s  # noqa: E402
from lipdub.translation import LineTranslator, SourceLine  # noqa: E402

EN, ES, FR, JA, ZH, AR, DE = (parse_language(c) for c in ("en", "es", "fr", "ja", "zh", "ar", "de"))
NLLB_TOKENS = ("eng_Latn", "spa_Latn", "fra_Latn", "deu_Latn", "jpn_Jpan", "zho_Hans", "zho_Hant", "arb_Arab", "por_Latn", "ita_Latn")
M2M_TOKENS = tuple(f"__{c}__" for c in ("en", "es", "fr", "de", "ja", "zh", "ar", "pt", "it", "ns"))


@pytest.fixture(scope="module")
def model_root(tmp_path_factory):
    """A user model directory with one tiny model per family, and an Argos package file."""
    root = tmp_path_factory.mktemp("models")
    build_tiny_ct2(root / "nllb-tiny", language_tokens=NLLB_TOKENS, spm_names=("sentencepiece.bpe.model",))
    build_tiny_ct2(root / "m2m-tiny", language_tokens=M2M_TOKENS, spm_names=("sentencepiece.bpe.model",), seed=1)
    build_tiny_ct2(root / "opus-mt-en-es", eos_bias=0.5, seed=1)
    build_tiny_ct2(root / "opus-mt-en-ROMANCE", language_tokens=(">>spa<<", ">>fra<<", ">>por<<"))
    build_tiny_ct2(root / "whisper-tiny")  # a translation model under a Whisper name is not taken
    build_tiny_ct2(root / "no-languages")
    # end token made unlikely: candidates run long and the best-scoring one is not the shortest
    build_tiny_ct2(root / "long-tiny", eos_bias=-1.0, seed=1)
    (root / "long-tiny" / "lipdub-mt.json").write_text(json.dumps({"source": ["en"], "target": ["es"]}))
    archives = tmp_path_factory.mktemp("argos")
    package = build_argos_package(archives, target_prefix="__es__", eos_bias=0.5)
    return root, package


@pytest.fixture
def models(model_root, monkeypatch, tmp_path):
    root, package = model_root
    monkeypatch.setenv("LIPDUB_MODEL_DIR", str(root))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("ARGOS_PACKAGES_DIR", str(tmp_path / "argos-packages"))
    return root, package


class Recorder:
    """Wraps a ctranslate2.Translator and keeps the arguments of every translate_batch call."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def translate_batch(self, source, target_prefix=None, **kw):
        self.calls.append({"source": source, "target_prefix": target_prefix, **kw})
        return self.inner.translate_batch(source, target_prefix=target_prefix, **kw)


def recorded(translator, source, target):
    engine = translator._engine(translator.model_for(source, target))
    if not isinstance(engine.translator, Recorder):
        engine.translator = Recorder(engine.translator)
    return engine.translator


def test_language_codes_per_family():
    from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES as M2M
    from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES as FLORES

    m2m = [f"__{c}__" for c in M2M["m2m100"]]
    assert codes.detect_family(FLORES) == codes.NLLB and codes.detect_family(m2m) == codes.M2M100
    assert codes.detect_family(["▁a", "b", ">>spa<<"]) == codes.MARIAN
    expected = {"es": "spa_Latn", "fr": "fra_Latn", "zh": "zho_Hans", "ar": "arb_Arab", "fa": "pes_Arab", "ms": "zsm_Latn",
                "no": "nob_Latn", "sw": "swh_Latn", "ja": "jpn_Jpan"}
    for code, token in expected.items():
        assert codes.nllb_code(parse_language(code), FLORES) == token
        assert codes.m2m_code(parse_language(code), m2m) == f"__{code}__"
    assert codes.m2m_code(parse_language("nso"), m2m) == "__ns__"
    # every language token maps to a language that maps back to the same token
    for family, tokens, back in ((codes.NLLB, FLORES, codes.nllb_code), (codes.M2M100, m2m, codes.m2m_code)):
        for token in tokens:
            lang = codes.language_of_token(family, token)
            if lang is not None and token not in ("zho_Hant", "yue_Hant", "ace_Arab", "bjn_Arab", "kas_Deva", "knc_Arab", "taq_Tfng"):
                assert back(lang, tokens) == token, (token, lang)
    marian = [">>spa<<", ">>fra<<", ">>cmn_Hans<<", ">>cmn_Hant<<", ">>es<<"]
    assert codes.marian_target_token(ES, marian) == ">>spa<<"
    assert codes.marian_target_token(ZH, marian) == ">>cmn_Hans<<"
    assert codes.marian_target_token(JA, marian) is None


def test_models_found_and_pairs(models):
    found = {m.name: m for m in available_mt_models()}
    assert {"nllb-tiny", "m2m-tiny", "opus-mt-en-es", "opus-mt-en-ROMANCE", "no-languages"} <= set(found)
    assert "whisper-tiny" not in found
    assert found["nllb-tiny"].family == codes.NLLB and found["m2m-tiny"].family == codes.M2M100
    assert found["opus-mt-en-ROMANCE"].family == codes.MARIAN and found["opus-mt-en-ROMANCE"].target_token(FR) == ">>fra<<"
    assert found["nllb-tiny"].covers(JA, AR) and not found["nllb-tiny"].covers(EN, parse_language("ko"))
    assert found["opus-mt-en-es"].covers(EN, ES) and not found["opus-mt-en-es"].covers(ES, EN)
    assert found["opus-mt-en-ROMANCE"].covers(EN, FR) and not found["opus-mt-en-ROMANCE"].covers(EN, DE)
    assert "lipdub-mt.json" in found["no-languages"].problem and not found["no-languages"].covers(EN, ES)
    # the sidecar file names a Marian model's languages
    (found["no-languages"].path / "lipdub-mt.json").write_text(json.dumps({"source": ["de"], "target": ["fr"]}))
    again = {m.name: m for m in available_mt_models()}["no-languages"]
    assert again.problem is None and again.covers(DE, FR)
    (found["no-languages"].path / "lipdub-mt.json").unlink()
    translator = TRANSLATORS.create("ctranslate2")
    assert translator.supports(EN, ES) and translator.supports(ZH, JA) and not translator.supports(EN, parse_language("ko"))
    from lipdub.doctor import _mt_models

    lines = {s.name: s for s in _mt_models()}
    assert lines["mt nllb-tiny"].usable and "10 languages" in lines["mt nllb-tiny"].detail
    assert not lines["mt no-languages"].usable
    assert "opus-mt-en-es" in TRANSLATORS.status("ctranslate2").detail


@pytest.mark.parametrize("model, source, target, lead, prefix", [
    ("nllb-tiny", EN, ES, ["eng_Latn"], ["spa_Latn"]),
    ("m2m-tiny", EN, ZH, ["__en__"], ["__zh__"]),
    ("opus-mt-en-ROMANCE", EN, FR, [">>fra<<"], None),
    ("opus-mt-en-es", EN, ES, [], None),
])
def test_tokens_sent_per_family(models, model, source, target, lead, prefix):
    root, _ = models
    translator = TRANSLATORS.create("ctranslate2", model=root / model)
    rec = recorded(translator, source, target)
    out = translator.translate([TranslationRequest("This is Diane in New Jersey."), TranslationRequest("  ")], source, target)
    (call,) = rec.calls
    assert len(call["source"]) == 1  # the blank line is not sent
    pieces = translator._engine(translator.model_for(source, target)).sp_source.encode("This is Diane in New Jersey.", out_type=str)
    assert call["source"][0] == lead + pieces + ["</s>"]
    assert call["target_prefix"] == [prefix]
    assert out[1] == "" and out[0]
    assert not any(tok in out[0] for tok in NLLB_TOKENS + M2M_TOKENS + (">>", "</s>"))


def test_nbest_choice_by_slot_length(models):
    root, _ = models
    translator = TRANSLATORS.create("ctranslate2", model=root / "long-tiny", num_hypotheses=6, sampling_topk=20, seed=7)
    text = "We thought Tony should be a little freaked out by that."
    free = translator.translate_detailed([TranslationRequest(text)], EN, ES)[0]
    hyps = free.hypotheses
    assert len(hyps) >= 3 and len({round(h.estimated_s, 3) for h in hyps}) >= 3
    best = max(range(len(hyps)), key=lambda i: hyps[i].score)
    assert free.chosen == best and free.text == hyps[best].text
    for h in hyps:  # estimates are the isochrony estimate at the default rate, scores log-probabilities
        assert h.estimated_s == pytest.approx(estimate_duration_s(h.text, None, "es")) and h.score < 0
    shortest = min(h.estimated_s for h in hyps)
    assert hyps[best].estimated_s > shortest, "the sampled candidates should not all be shortest-first"
    budget = (shortest + hyps[best].estimated_s) / 2
    translator2 = TRANSLATORS.create("ctranslate2", model=root / "long-tiny", num_hypotheses=6, sampling_topk=20, seed=7)
    fitted = translator2.translate_detailed([TranslationRequest(text, budget)], EN, ES)[0]
    assert [h.text for h in fitted.hypotheses] == [h.text for h in hyps]  # same seed, same candidates
    fits = [i for i, h in enumerate(hyps) if h.estimated_s <= budget]
    assert fitted.chosen == max(fits, key=lambda i: hyps[i].score) and fitted.choice == "best score that fits"
    assert hyps[fitted.chosen].estimated_s <= budget < hyps[best].estimated_s
    # a budget nothing fits: the shortest candidate
    translator3 = TRANSLATORS.create("ctranslate2", model=root / "long-tiny", num_hypotheses=6, sampling_topk=20, seed=7)
    tight = translator3.translate_detailed([TranslationRequest(text, shortest / 2)], EN, ES)[0]
    assert tight.hypotheses[tight.chosen].estimated_s == shortest and tight.choice == "shortest: none fits"


def test_beam_candidates_are_the_models(models):
    import ctranslate2
    import sentencepiece as spm

    root, _ = models
    translator = TRANSLATORS.create("ctranslate2", model=root / "opus-mt-en-es", num_hypotheses=4, beam_size=4)
    res = translator.translate_detailed([TranslationRequest("I heard a beep.")], EN, ES)[0]
    sp = spm.SentencePieceProcessor(model_file=str(root / "opus-mt-en-es" / "target.spm"))
    direct = ctranslate2.Translator(str(root / "opus-mt-en-es")).translate_batch(
        [sp.encode("I heard a beep.", out_type=str) + ["</s>"]], beam_size=4, num_hypotheses=4, return_scores=True, disable_unk=True)
    texts = [" ".join(sp.decode(h).split()) for h in direct[0].hypotheses]
    assert [h.text for h in res.hypotheses] == [t for i, t in enumerate(texts) if t and any(c.isalpha() for c in t) and t not in texts[:i]]


def test_shorter_on_request(models):
    root, _ = models
    translator = TRANSLATORS.create("ctranslate2", model=root / "opus-mt-en-es", num_hypotheses=3, sampling_topk=20, seed=3)
    assert translator.shortens
    first = translator.translate_detailed([TranslationRequest("We thought Tony should be a little freaked out by that.")], EN, ES)[0]
    longest = max(first.hypotheses, key=lambda h: h.estimated_s)
    rec = recorded(translator, EN, ES)
    short = translator.translate_detailed([TranslationRequest("We thought Tony should be a little freaked out by that.", 0.5,
                                                              too_long=longest.text)], EN, ES)[0]
    assert rec.calls[-1]["num_hypotheses"] == 6  # twice the candidates for a re-translation
    assert short.hypotheses[short.chosen].estimated_s < longest.estimated_s
    # the same through LineTranslator.shorten, the call the fit loop makes for one line
    line = SourceLine("We thought Tony should be a little freaked out by that.", 3.0, "A")
    record = LineTranslator(translator, EN, ES, names=["Tony"]).shorten(line, longest.text, 0.5, index=7)
    assert record.index == 7 and record.budget_s == 0.5 and record.estimated_s < longest.estimated_s
    assert [t.source for t in record.terms] == ["Tony"]
    class RuleBased(TranslatorBackend):  # a translator without ``shortens``
        name = "rule-based"

        def translate(self, requests, source, target):
            return [r.text for r in requests]

    with pytest.raises(ConfigError, match="cannot give shorter"):
        LineTranslator(RuleBased(), EN, ES).shorten(line, longest.text, 0.5)


def test_terms_written_into_the_source(models):
    root, _ = models
    translator = TRANSLATORS.create("ctranslate2", model=root / "opus-mt-en-es")
    rec = recorded(translator, EN, ES)
    terms = (Term("beep", "pitido"), Term("Diane", "Diane"))
    res = translator.translate_detailed([TranslationRequest("Diane heard a beep.", terms=terms)], EN, ES)[0]
    engine = translator._engine(translator.model_for(EN, ES))
    sent = rec.calls[0]["source"][0]
    assert sent == engine.sp_source.encode("Diane heard a pitido.", out_type=str) + ["</s>"]
    # a random model keeps neither term: the choice says so, the records below report it
    assert "no candidate keeps every term" in res.choice
    lines = [SourceLine("This is Diane in New Jersey.", 1.6, "A"), SourceLine("I heard a beep.", 1.0, "A")]
    from lipdub.translation import Glossary

    records = LineTranslator(translator, EN, ES, glossary=Glossary.parse("beep,pitido\n"), names=["Diane", "New Jersey"]).translate_lines(lines)
    assert [(t.source, t.kind) for t in records[0].terms] == [("Diane", "name"), ("New Jersey", "name")]
    assert [(t.source, t.target, t.kind) for t in records[1].terms] == [("beep", "pitido", "glossary")]
    assert all(t.kept == (t.target in r.text) for r in records for t in r.terms)
    d = records[1].to_dict()
    assert d["backend"] == "ctranslate2" and d["budget_s"] == 1.0 and len(d["hypotheses"]) >= 1
    assert d["hypotheses"][d["chosen"]]["text"] == d["group_text"] and {"text", "score", "estimated_s"} <= set(d["hypotheses"][0])


def test_context_through_the_target_prefix(models):
    root, _ = models
    translator = TRANSLATORS.create("ctranslate2", model=root / "nllb-tiny", context=True, num_hypotheses=2)
    rec = recorded(translator, EN, ES)
    lines = [SourceLine("This is Diane.", 1.0, "A"), SourceLine("She lives in New Jersey.", 1.5, "A")]
    records = LineTranslator(translator, EN, ES).translate_lines(lines)
    engine = translator._engine(translator.model_for(EN, ES))
    second = next(c for c in rec.calls if c["target_prefix"][0] != ["spa_Latn"])
    assert second["source"][0] == ["eng_Latn"] + engine.sp_source.encode("This is Diane. She lives in New Jersey.", out_type=str) + ["</s>"]
    assert second["target_prefix"][0] == ["spa_Latn"] + engine.sp_target.encode(records[0].text, out_type=str)
    assert records[1].text and not records[1].text.startswith(records[0].text) or "without context" in records[1].choice


def test_argos_package(models, tmp_path):
    root, package = models
    installed = install_argos_package(package, tmp_path / "argos")
    assert (installed / "metadata.json").is_file() and (installed / "model" / "model.bin").is_file()
    mtime = (installed / "model" / "model.bin").stat().st_mtime_ns
    assert install_argos_package(package, tmp_path / "argos") == installed  # unpacked once
    assert (installed / "model" / "model.bin").stat().st_mtime_ns == mtime
    translator = TRANSLATORS.create("ctranslate2", model=package)  # the file: installed into $LIPDUB_MODEL_DIR/argos
    assert (root / "argos" / installed.name / "metadata.json").is_file()
    model = translator.model_for(EN, ES)
    assert model.family == codes.ARGOS and not translator.supports(ES, EN)
    rec = recorded(translator, EN, ES)
    out = translator.translate([TranslationRequest("I heard a beep.")], EN, ES)
    engine = translator._engine(model)
    assert rec.calls[0]["source"] == [engine.sp_source.encode("I heard a beep.", out_type=str)]  # bare pieces
    assert rec.calls[0]["target_prefix"] == [["__es__"]] and "__es__" not in out[0]
    assert any(m.origin == "argos" for m in available_mt_models())


def test_bad_archives_and_missing_models(models, tmp_path):
    root, _ = models
    evil = tmp_path / "evil.argosmodel"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("pkg/metadata.json", "{}")
        zf.writestr("pkg/../../escape.txt", "x")
    with pytest.raises(InputError, match="leave the package"):
        install_argos_package(evil, tmp_path / "argos")
    (tmp_path / "notzip.argosmodel").write_text("nope")
    with pytest.raises(InputError, match="not a zip"):
        install_argos_package(tmp_path / "notzip.argosmodel", tmp_path / "argos")
    with pytest.raises(MissingWeights, match="not found"):
        TRANSLATORS.create("ctranslate2", model=tmp_path / "nothing")
    with pytest.raises(MissingWeights, match="languages are unknown"):
        TRANSLATORS.create("ctranslate2", model=root / "no-languages")
    translator = TRANSLATORS.create("ctranslate2", model=root / "opus-mt-en-es")
    with pytest.raises(ConfigError, match="en->ja") as info:
        translator.translate([TranslationRequest("Hello.")], EN, JA)
    assert "opus-mt-en-es" in info.value.hint
    with pytest.raises(ConfigError):
        TRANSLATORS.create("ctranslate2", model=root / "opus-mt-en-es", num_hypotheses=0)


def test_no_model_here(monkeypatch, tmp_path):
    for var, sub in (("LIPDUB_MODEL_DIR", "m"), ("HF_HUB_CACHE", "hf"), ("ARGOS_PACKAGES_DIR", "a")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    status = TRANSLATORS.status("ctranslate2")
    assert not status.usable and "no CTranslate2 translation model" in status.detail
    translator = TRANSLATORS.create("ctranslate2")
    assert not translator.supports(EN, ES)


def test_through_the_pipeline_and_resume(models, testdata, tmp_path):
    """The translate stage with ``--translator ctranslate2`` on the pyannote sample (transcript
    imported from its .stm), then a second run that redoes nothing."""
    from lipdub.config import DubConfig
    from lipdub.pipeline import Dubber

    def stamp(t: float) -> str:
        return f"{int(t // 3600):02d}:{int(t % 3600 // 60):02d}:{int(t % 60):02d},{round(t % 1 * 1000):03d}"

    rows = [r.split(None, 5) for r in (testdata / "sp_en_2spk_pyannote_sample.stm").read_text(encoding="utf-8").splitlines()]
    srt = tmp_path / "sample.srt"
    srt.write_text("\n".join(f"{k + 1}\n{stamp(float(r[3]))} --> {stamp(float(r[4]))}\n{r[5]}\n" for k, r in enumerate(rows)), encoding="utf-8")
    cfg = DubConfig(input=testdata / "sp_en_2spk_pyannote_sample.wav", targets=["es"], output=tmp_path / "out", transcript=srt,
                    source_language="en", translator="ctranslate2", separation="none", lipsync="none")
    first = Dubber(cfg).run(until="translate")
    assert "translate:es" in first.ran
    script = json.loads((first.project_dir / "script.json").read_text(encoding="utf-8"))
    targets = [seg["targets"]["es"] for seg in script["segments"]]
    assert len(targets) == len(rows) and all(t["text"] and t["translator"] == "ctranslate2" for t in targets)
    again = Dubber(cfg).run(until="translate")
    assert again.ran == [] and "translate:es" in again.skipped
