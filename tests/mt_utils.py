"""Tiny CTranslate2 translation models built offline for the tests (random weights, no download).

A SentencePiece model is trained on a few sentences, a 1-layer Marian Transformer with random
weights is made with ``transformers`` (its vocabulary: the pieces plus any language tokens asked
for, e.g. NLLB's ``spa_Latn`` or Marian's ``>>spa<<``), and ``ctranslate2.converters.
TransformersConverter`` converts it. The family lipdub sees is decided by the vocabulary, so one
architecture serves NLLB-, M2M-100- and Marian-style models. A bias on the end token of the output
layer makes the random model stop after a few tokens, so the n-best hypotheses differ in length.
"""

from __future__ import annotations

import io
import json
import shutil
import warnings
import zipfile
from pathlib import Path

CORPUS = [
    "Hello, my friend.", "This is Diane in New Jersey.", "I heard a beep.", "The dogs are in the house.",
    "We thought Tony should be a little freaked out by that.", "And so what he is doing to compensate.",
    "Hola, mi amigo.", "Esto es Diane en Nueva Jersey.", "Oí un pitido.", "Los perros están en la casa.",
    "Pensamos que Tony debería estar un poco asustado.", "Y lo que hace para compensar.",
]


def train_spm(dest: Path, vocab_size: int = 80) -> Path:
    """SentencePiece unigram model trained on :data:`CORPUS` (``<unk>`` 0, ``</s>`` 1)."""
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(CORPUS * 4), model_writer=buf, vocab_size=vocab_size,
                                   model_type="unigram", character_coverage=1.0, pad_id=-1, bos_id=-1, eos_id=1,
                                   unk_id=0, minloglevel=2, hard_vocab_limit=False)
    dest.write_bytes(buf.getvalue())
    return dest


def build_tiny_ct2(dest: Path, **options) -> Path:
    """Build a random tiny Marian model converted to CTranslate2 in ``dest`` (see :func:`_build`)."""
    with warnings.catch_warnings():  # MarianTokenizer: "Recommended: pip install sacremoses" (unused here)
        warnings.filterwarnings("ignore", message="Recommended: pip install sacremoses")
        return _build(dest, **options)


def _build(dest: Path, *, language_tokens: tuple[str, ...] = (), eos_bias: float = 1.5, seed: int = 0,
                   spm_names: tuple[str, ...] = ("source.spm", "target.spm")) -> Path:
    """Build a random tiny Marian model converted to CTranslate2 in ``dest`` (returned).

    Args:
        language_tokens: extra vocabulary entries (language tokens of the family imitated).
        eos_bias: output-layer bias of ``</s>`` (higher: shorter outputs).
        seed: torch seed of the random weights.
        spm_names: names the SentencePiece model is copied to inside ``dest``.
    """
    import sentencepiece as spm
    import torch
    from ctranslate2.converters import TransformersConverter
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    work = dest.parent / f".{dest.name}.hf"
    work.mkdir(parents=True, exist_ok=True)
    sp_path = train_spm(work / "source.spm")
    shutil.copy(sp_path, work / "target.spm")
    sp = spm.SentencePieceProcessor(model_file=str(sp_path))
    vocab: dict[str, int] = {}
    for piece in [sp.id_to_piece(i) for i in range(sp.get_piece_size())] + list(language_tokens) + ["<pad>"]:
        vocab.setdefault(piece, len(vocab))
    (work / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    MarianTokenizer(vocab=str(work / "vocab.json"), source_spm=str(work / "source.spm"), target_spm=str(work / "target.spm"),
                    unk_token="<unk>", eos_token="</s>", pad_token="<pad>").save_pretrained(work)
    torch.manual_seed(seed)
    config = MarianConfig(vocab_size=len(vocab), d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                          decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=256,
                          pad_token_id=vocab["<pad>"], eos_token_id=vocab["</s>"], decoder_start_token_id=vocab["<pad>"])
    model = MarianMTModel(config)
    with torch.no_grad():
        model.final_logits_bias[0, vocab["</s>"]] = eos_bias
    model.save_pretrained(work)
    TransformersConverter(str(work)).convert(str(dest), force=True)  # loads the tokenizer again
    for name in spm_names:
        shutil.copy(sp_path, dest / name)
    shutil.rmtree(work)
    return dest


def build_argos_package(dest_dir: Path, name: str = "translate-en_es-1_0", from_code: str = "en", to_code: str = "es",
                        target_prefix: str | None = None, **model_options) -> Path:
    """An ``.argosmodel`` zip (``<name>/metadata.json``, ``model/``, ``sentencepiece.model``)."""
    folder = dest_dir / name
    build_tiny_ct2(folder / "model", spm_names=(), **model_options)
    train_spm(folder / "sentencepiece.model")
    meta = {"package_version": "1.0", "argos_version": "1.0", "from_code": from_code, "to_code": to_code,
            "from_name": from_code, "to_name": to_code, "type": "translate"}
    if target_prefix:
        meta["target_prefix"] = target_prefix
    (folder / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    archive = dest_dir / f"{name}.argosmodel"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(folder.rglob("*")):
            zf.write(p, p.relative_to(dest_dir).as_posix())
    shutil.rmtree(folder)
    return archive
