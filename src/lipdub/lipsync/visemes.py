"""Speaker-independent viseme knowledge: the inventory, the phoneme-to-viseme map, coarticulation.

Shared by the ``retrieval`` lip-sync backend (targets, unit selection) and the quality report's viseme
check (:mod:`lipdub.qc.visemes`), so it depends on nothing but numpy.

**Inventory.** The 15 visemes of MPEG-4 Face and Body Animation (ISO/IEC 14496-2:1999, Annex C,
table "Visemes and related phonemes": 0 none, 1 p b m, 2 f v, 3 T D, 4 t d, 5 k g, 6 tS dZ S, 7 s z,
8 n l, 9 r, 10 A:, 11 e, 12 I, 13 Q, 14 U), named as in the Oculus/Meta OVR lip-sync set that follows
them (``sil PP FF TH DD kk CH SS nn RR aa E ih oh ou``).

**Map.** Every IPA symbol espeak-ng 1.51 emits in its phoneme events for es, fr, it, pt, de and en
(and the usual variants Kokoro's G2P writes: ``ʧ ʤ ᵊ``) goes to the viseme of its place of
articulation and lip shape (IPA chart; Ladefoged and Johnson, "A Course in Phonetics"). Where MPEG-4,
built on English, has no class, the visible articulation decides: front rounded vowels (y ø œ) go with
the rounded ones (ou, oh), taps and trills (ɾ r) with the alveolars (DD: the English approximant ɹ
alone is lip-rounded RR), uvular and palatal consonants (ʁ ç ʝ) with the velars (kk), glides with their
vowels (j -> ih, w ɥ -> ou). A diphthong or a sequence espeak reports as one event (``aɪ``, ``ɐ̃ʊ̃``,
``pf``) is split into its parts over equal shares of its time. Stress, length, nasalization and
espeak's own suffixes (``a-``) do not change the viseme and are stripped.

**Coarticulation.** Dominance functions (Cohen and Massaro, "Modeling coarticulation in synthetic
visual speech", Models and Techniques in Computer Animation, 1993): every phone segment k pulls the
mouth towards its viseme's target with ``D_k(t) = alpha_k exp(-d_k(t) / tau)``, the target at time t
being ``sum_k D_k(t) T_k / sum_k D_k(t)``. Here ``d_k`` is the distance from t to the segment's span (0
inside it, so a long vowel holds its shape) and ``tau`` differs before the segment (anticipation) and
after it (carry-over). Lip-specified visemes (PP, FF, rounded vowels) dominate, tongue-only consonants
(kk, nn, DD) let their neighbours shape the lips, and h / ʔ are nearly transparent.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Viseme:
    """One viseme class.

    Attributes:
        id: MPEG-4 FBA viseme number (0-14).
        name: short name (OVR lip-sync set).
        example: the MPEG-4 table's example phonemes.
        opening: speaker-independent prior of the mouth opening, as a quantile (0-1) of the actor's
            own openings while speaking (0: closed, 1: widest).
        width: prior of the lip-corner distance, quantile (0-1) of the actor's own widths (0: most
            rounded / protruded, 1: most spread).
        alpha: dominance magnitude (Cohen and Massaro 1993); how strongly the viseme shapes the lips.
        tau_before_s: anticipatory decay time of the dominance before the segment, seconds.
        tau_after_s: carry-over decay time after the segment, seconds.
    """

    id: int
    name: str
    example: str
    opening: float
    width: float
    alpha: float
    tau_before_s: float
    tau_after_s: float


#: MPEG-4 visemes in id order. Priors: vowel height -> opening, rounding / spreading -> width (IPA chart);
#: dominance after Cohen and Massaro's observation that lip-specified segments resist coarticulation.
VISEMES: tuple[Viseme, ...] = (
    Viseme(0, "sil", "(silence)", 0.00, 0.45, 0.60, 0.020, 0.020),
    Viseme(1, "PP", "p b m", 0.00, 0.45, 1.00, 0.015, 0.015),
    Viseme(2, "FF", "f v", 0.10, 0.50, 0.90, 0.020, 0.015),
    Viseme(3, "TH", "θ ð", 0.35, 0.55, 0.50, 0.020, 0.020),
    Viseme(4, "DD", "t d", 0.30, 0.55, 0.30, 0.020, 0.020),
    Viseme(5, "kk", "k g", 0.40, 0.50, 0.20, 0.020, 0.020),
    Viseme(6, "CH", "tʃ dʒ ʃ", 0.30, 0.15, 0.70, 0.030, 0.020),
    Viseme(7, "SS", "s z", 0.20, 0.70, 0.50, 0.020, 0.020),
    Viseme(8, "nn", "n l", 0.30, 0.55, 0.30, 0.020, 0.020),
    Viseme(9, "RR", "ɹ", 0.30, 0.30, 0.50, 0.025, 0.020),
    Viseme(10, "aa", "a ɑ", 0.95, 0.60, 0.60, 0.025, 0.025),
    Viseme(11, "E", "e ɛ ə", 0.65, 0.75, 0.60, 0.025, 0.025),
    Viseme(12, "ih", "i ɪ j", 0.40, 0.95, 0.60, 0.025, 0.025),
    Viseme(13, "oh", "o ɔ ø", 0.70, 0.15, 0.80, 0.040, 0.025),
    Viseme(14, "ou", "u ʊ y w", 0.30, 0.05, 0.80, 0.040, 0.025),
)
VISEME_BY_NAME = {v.name: v for v in VISEMES}
VISEME_NAMES = tuple(v.name for v in VISEMES)
N_VISEMES = len(VISEMES)
SIL, PP, AA = 0, 1, 10

#: IPA symbols (after :func:`normalize_phoneme`) -> viseme id.
_SYMBOLS: dict[str, int] = {}
for _vid, _syms in {
    1: "p b m β ɸ",
    2: "f v ɱ ʋ",
    3: "θ ð",
    4: "t d ʈ ɖ ɾ r ɽ ʙ",
    5: "k g ɡ x ɣ q ɢ χ ʁ ʀ ŋ c ɟ ç ʝ ɰ h ɦ ʔ ħ ʕ",
    6: "ʃ ʒ tʃ dʒ ʧ ʤ ʂ ʐ ɕ ʑ tɕ dʑ",
    7: "s z ts dz ʦ ʣ",
    8: "n l ɲ ʎ ɫ ɳ ɭ ɬ ɮ ʟ",
    9: "ɹ ɻ ɚ ɝ",
    10: "a ɑ ɐ æ ɒ ä ʌ ɶ",
    11: "e ɛ ə ɜ ɘ ᵊ ɞ",
    12: "i ɪ ɨ ᵻ ɯ j ɤ",
    13: "o ɔ ø œ ɵ",
    14: "u ʊ y ʏ w ɥ ʉ",
}.items():
    for _s in _syms.split():
        _SYMBOLS[_s] = _vid
#: Symbols that hardly shape the lips (glottal): their dominance is scaled down further.
TRANSPARENT = frozenset({"h", "ɦ", "ʔ", "ħ", "ʕ"})
TRANSPARENT_ALPHA_SCALE = 0.25
#: Bilabial stops and nasals, the phonemes whose lips must touch (the viseme check counts these).
BILABIAL_STOPS = frozenset({"p", "b", "m"})
#: Oral stops (plosives and affricates). A synthesizer's phoneme event for a stop marks its release
#: (espeak-ng: the burst); the closure is the silence just before it, which :func:`stop_closure_starts`
#: adds back to the segment.
PLOSIVES = frozenset({"p", "b", "t", "d", "k", "g", "ɡ", "q", "ɢ", "c", "ɟ", "ʈ", "ɖ", "tʃ", "dʒ", "ʧ", "ʤ", "ts", "dz", "ʦ", "ʣ", "tɕ", "dʑ"})
#: Open and near-open vowels (IPA chart), the ones whose mouth must be open (the viseme check).
OPEN_VOWELS = frozenset({"a", "ɑ", "ɐ", "æ", "ɒ", "ä", "ɶ"})
#: Shortest lip closure planned for a p, b or m, seconds: bilabial closures in running speech last
#: about 60-120 ms (stop closures in read speech: Crystal and House, "Segmental durations in
#: connected-speech signals", JASA 1988), longer than many a synthesizer's event for the burst.
MIN_CLOSURE_S = 0.08
#: Pauses some G2P front ends write as phonemes.
PAUSES = frozenset({"_", "_:", "_!", "||", "|", "#", ".", ",", " ", ""})

_DROP = set("ˈˌːˑ'\"-_0123456789ʰʲʷˠˤ˞ʼ")
_LONGEST = max(len(s) for s in _SYMBOLS)


def normalize_phoneme(phoneme: str) -> str:
    """Strip what does not change the viseme: stress and length marks, espeak's suffixes (``a-``),
    secondary articulations (ʰ ʲ ʷ), and every combining diacritic (nasal tilde, syllabic, tie bar),
    after Unicode NFD. ``"ˈaː"`` -> ``"a"``, ``"ɐ̃ʊ̃"`` -> ``"ɐʊ"``, ``"t͡ʃ"`` -> ``"tʃ"``."""
    p = unicodedata.normalize("NFD", str(phoneme).strip())
    return "".join(ch for ch in p if ch not in _DROP and not unicodedata.combining(ch))


def phoneme_parts(phoneme: str) -> tuple[str, ...] | None:
    """The inventory symbols of one phoneme event, in time order: ``"aɪ"`` -> ("a", "ɪ"), ``"pf"`` ->
    ("p", "f"), ``"tʃ"`` -> ("tʃ",) (greedy longest match, so affricates stay one), ``("_",)`` for a
    pause; ``None`` when some symbol is not in the inventory."""
    raw = str(phoneme).strip()
    if raw in PAUSES:
        return ("_",)
    p = normalize_phoneme(raw)
    if not p:
        return ("_",) if not raw.strip("ˈˌːˑ") else None
    if p in _SYMBOLS:
        return (p,)
    out, i = [], 0
    while i < len(p):
        for n in range(min(_LONGEST, len(p) - i), 0, -1):
            if p[i:i + n] in _SYMBOLS:
                out.append(p[i:i + n])
                i += n
                break
        else:
            return None
    return tuple(out)


def phoneme_visemes(phoneme: str) -> tuple[int, ...] | None:
    """Viseme ids of one phoneme event, in time order (see :func:`phoneme_parts`).

    One id for a simple phoneme (``"m"`` -> (1,)), several for a diphthong or a sequence reported as
    one event (``"aɪ"`` -> (10, 12), ``"pf"`` -> (1, 2)), ``(0,)`` for a pause; ``None`` when a symbol is
    not in the inventory. ARPAbet (``"P"``, ``"AA1"``) is not IPA and gives None.
    """
    parts = phoneme_parts(phoneme)
    return None if parts is None else tuple(_SYMBOLS.get(s, SIL) for s in parts)


def is_bilabial(phoneme: str) -> bool:
    """True for a bilabial stop or nasal (espeak IPA ``p b m`` with any stress, length or secondary
    mark: ``pʰ``, ``mʲ``, ``ˈb``, ``m̩``) and ARPAbet ``P B M EM``. Not the approximant β nor ɸ,
    whose lips need not touch."""
    p = str(phoneme).strip()
    if p.upper() in {"P", "B", "M", "EM"}:
        return True
    core = normalize_phoneme(p)
    return core in BILABIAL_STOPS or core in {"pp", "bb", "mm"}


def is_open_vowel(phoneme: str) -> bool:
    """True for an open or near-open vowel (IPA ``a ɑ ɐ æ ɒ``, with stress, length or nasalization:
    ``ˈa``, ``ɑː``, ``ɑ̃``, espeak's ``a-``). Diphthongs are not counted (their mouth closes on the way)."""
    return normalize_phoneme(phoneme) in OPEN_VOWELS


def as_timings(phonemes: Iterable | None) -> list[tuple[float, float, str]]:
    """``(start_s, end_s, phoneme)`` tuples from :class:`~lipdub.contracts.synthesize.PhonemeTiming`
    objects, dicts with those keys, or tuples; sorted by start; empty spans dropped."""
    out = []
    for p in phonemes or ():
        if isinstance(p, dict):
            s, e, ph = p["start_s"], p["end_s"], p["phoneme"]
        elif hasattr(p, "start_s"):
            s, e, ph = p.start_s, p.end_s, p.phoneme
        else:
            s, e, ph = p
        if float(e) > float(s):
            out.append((float(s), float(e), str(ph)))
    out.sort(key=lambda x: x[0])
    return out


@dataclass
class VisemeSegments:
    """Viseme segments of an utterance (diphthongs split), arrays of length ``S``.

    Attributes:
        start_s, end_s: float64 span of each segment, seconds.
        viseme: int64 viseme ids.
        alpha: float64 dominance magnitude (the viseme's, lowered for glottal phonemes).
        closure: bool, the segment is a bilabial stop or nasal (p, b, m): the lips must touch.
        plosive: bool, the segment is an oral stop (its closure may precede its start).
        phoneme: the phoneme each segment came from.
        unknown: phonemes not in the inventory (left out: the neighbours' coarticulation fills in).
    """

    start_s: np.ndarray
    end_s: np.ndarray
    viseme: np.ndarray
    alpha: np.ndarray
    closure: np.ndarray
    plosive: np.ndarray
    phoneme: list[str]
    unknown: list[str]

    def __len__(self) -> int:
        return len(self.viseme)


def viseme_segments(phonemes: Iterable | None) -> VisemeSegments:
    """Split phoneme timings (see :func:`as_timings`) into viseme segments.

    A phoneme of n inventory symbols (a diphthong, ``pf``) gives n segments of equal length. Phonemes
    outside the inventory are left out and listed in ``unknown`` (logged as a warning): their time is
    filled by the coarticulation of their neighbours, never by a guessed shape. Pauses are left out too
    (the planner closes the mouth on silences it measures in the audio).
    """
    starts, ends, vis, alphas, closure, plosive, names, unknown = [], [], [], [], [], [], [], []
    for s, e, ph in as_timings(phonemes):
        parts = phoneme_parts(ph)
        if parts is None:
            unknown.append(ph)
            continue
        if parts == ("_",):
            continue
        step = (e - s) / len(parts)
        scale = TRANSPARENT_ALPHA_SCALE if normalize_phoneme(ph) in TRANSPARENT else 1.0
        for k, sym in enumerate(parts):
            v = _SYMBOLS[sym]
            starts.append(s + k * step)
            ends.append(s + (k + 1) * step)
            vis.append(v)
            alphas.append(VISEMES[v].alpha * scale)
            closure.append(sym in BILABIAL_STOPS)
            plosive.append(sym in PLOSIVES)
            names.append(ph)
    if unknown:
        log.warning("phonemes outside the viseme inventory (left to coarticulation): %s", " ".join(sorted(set(unknown))))
    return VisemeSegments(np.asarray(starts, np.float64), np.asarray(ends, np.float64), np.asarray(vis, np.int64),
                          np.asarray(alphas, np.float64), np.asarray(closure, bool), np.asarray(plosive, bool), names, unknown)


def dominance(segments: VisemeSegments, times_s: np.ndarray, reach_s: float = 0.25) -> np.ndarray:
    """Dominance of every segment at every time: float64 ``(N, S)``.

    ``D[i, k] = alpha_k exp(-d / tau)`` with d the distance (seconds) from ``times_s[i]`` to segment k's
    span (0 inside), ``tau`` = the viseme's ``tau_before_s`` when the time is before the segment and
    ``tau_after_s`` after it; 0 beyond ``reach_s``.
    """
    t = np.asarray(times_s, np.float64)[:, None]
    if len(segments) == 0:
        return np.zeros((len(t), 0))
    before = np.maximum(segments.start_s[None, :] - t, 0.0)
    after = np.maximum(t - segments.end_s[None, :], 0.0)
    tb = np.array([VISEMES[v].tau_before_s for v in segments.viseme])[None, :]
    ta = np.array([VISEMES[v].tau_after_s for v in segments.viseme])[None, :]
    d = before / tb + after / ta
    dom = segments.alpha[None, :] * np.exp(-d)
    dom[(before + after) > reach_s] = 0.0
    return dom


def frame_visemes(times_s: np.ndarray, phonemes: Iterable | None, reach_s: float = 0.25) -> np.ndarray:
    """The dominant viseme at each time (int64 ``(N,)``; -1 where no phoneme reaches, i.e. silence
    or no phonemes): the argmax of :func:`dominance`."""
    seg = phonemes if isinstance(phonemes, VisemeSegments) else viseme_segments(phonemes)
    t = np.asarray(times_s, np.float64)
    out = np.full(len(t), -1, np.int64)
    if len(seg) == 0 or len(t) == 0:
        return out
    dom = dominance(seg, t, reach_s)
    has = dom.max(axis=1) > 0
    out[has] = seg.viseme[np.argmax(dom[has], axis=1)]
    return out


def coarticulate(segments: VisemeSegments, times_s: np.ndarray, targets: np.ndarray,
                 reach_s: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Cohen-Massaro blend of per-viseme targets.

    Args:
        segments: from :func:`viseme_segments`.
        times_s: float ``(N,)`` times to evaluate (seconds).
        targets: float ``(N_VISEMES, D)`` one target vector per viseme id.

    Returns:
        ``(trajectory, weight)``: float64 ``(N, D)`` the blended targets (zeros where no segment
        reaches) and float64 ``(N,)`` the summed dominance (0 = no phoneme near).
    """
    tg = np.asarray(targets, np.float64)
    dom = dominance(segments, times_s, reach_s)
    w = dom.sum(axis=1)
    if dom.shape[1] == 0:
        return np.zeros((len(np.asarray(times_s)), tg.shape[1])), w
    traj = dom @ tg[segments.viseme] / np.maximum(w, 1e-12)[:, None]
    traj[w <= 0] = 0.0
    return traj, w


def phoneme_frames(times_s: np.ndarray, phonemes: Sequence[tuple[float, float, str]], frame_s: float | None = None) -> list[np.ndarray]:
    """For each ``(start_s, end_s, phoneme)``, the indices of the frames (presentation times
    ``times_s``) inside its span; a phoneme shorter than a frame gets the frame nearest its middle
    (when within half a frame of it)."""
    t = np.asarray(times_s, np.float64)
    if frame_s is None:
        frame_s = float(np.median(np.diff(t))) if len(t) > 1 else 0.04
    out = []
    for s, e, _ph in phonemes:
        inside = np.flatnonzero((t >= s) & (t < e))
        if len(inside) == 0 and len(t):
            mid = 0.5 * (s + e)
            i = int(np.argmin(np.abs(t - mid)))
            inside = np.array([i]) if abs(t[i] - mid) <= 0.5 * (e - s) + 0.5 * frame_s else np.zeros(0, np.int64)
        out.append(inside.astype(np.int64))
    return out


def viseme_distance() -> np.ndarray:
    """float64 ``(N_VISEMES, N_VISEMES)`` dissimilarity of two visemes in [0, 1]: the distance of their
    (opening, width) priors over 0.5, capped at 1; 1 between a lip-closing class (sil, PP) and any other
    (lip contact is all or nothing), 0 on the diagonal. Used as a label cost by unit selection."""
    ow = np.array([[v.opening, v.width] for v in VISEMES])
    d = np.minimum(1.0, np.linalg.norm(ow[:, None, :] - ow[None, :, :], axis=2) / 0.5)
    closed = np.array([v.id in (SIL, PP) for v in VISEMES])
    d[closed[:, None] != closed[None, :]] = 1.0
    np.fill_diagonal(d, 0.0)
    return d


def stop_closure_starts(segments: VisemeSegments, audio: np.ndarray, sample_rate_hz: int, *,
                        max_closure_s: float = 0.10, quiet_db: float = 35.0, hop_s: float = 0.005) -> VisemeSegments:
    """Segments whose oral stops start at their closure instead of their release.

    A stop's phoneme event (espeak-ng) marks the burst; the lips or tongue close during the silence
    before it. Each plosive segment's start is moved back over the quiet stretch that precedes it in
    ``audio`` (float mono at ``sample_rate_hz``, on the same timeline): 5 ms frames whose RMS level is
    more than ``quiet_db`` below the utterance's loud level (95th percentile), at most ``max_closure_s``
    and never before the previous segment's start. A stop with no silence before it (voiced, or a TTS
    whose events already include the closure) is left as it is.

    Returns:
        A new :class:`VisemeSegments` (same order; starts may now overlap the previous segment's end).
    """
    x = np.asarray(audio, np.float64)
    hop = max(1, int(round(hop_s * sample_rate_hz)))
    n = len(x) // hop
    if n == 0 or not segments.plosive.any():
        return segments
    level = 10 * np.log10(np.mean(x[:n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    quiet = level < np.percentile(level, 95) - quiet_db
    starts = segments.start_s.copy()
    order = np.argsort(segments.start_s, kind="stable")
    prev_start = np.full(len(starts), -np.inf)
    prev_start[order[1:]] = segments.start_s[order[:-1]]
    for k in np.flatnonzero(segments.plosive):
        i = int(segments.start_s[k] / hop_s) - 1
        limit = max(segments.start_s[k] - max_closure_s, prev_start[k] + hop_s)
        while 0 <= i < n and quiet[i] and i * hop_s >= limit:
            i -= 1
        starts[k] = min(segments.start_s[k], (i + 1) * hop_s)
    return VisemeSegments(starts, segments.end_s, segments.viseme, segments.alpha, segments.closure, segments.plosive,
                          segments.phoneme, segments.unknown)


def closure_intervals(segments: VisemeSegments, min_closure_s: float = MIN_CLOSURE_S) -> list[tuple[float, float]]:
    """Lip closures of the p, b, m segments, seconds: each segment's span (for stops, from its closure:
    see :func:`stop_closure_starts`), widened about its middle to at least ``min_closure_s``."""
    out = []
    for a, b in zip(segments.start_s[segments.closure], segments.end_s[segments.closure]):
        if b - a < min_closure_s:
            mid = 0.5 * (a + b)
            a, b = mid - 0.5 * min_closure_s, mid + 0.5 * min_closure_s
        out.append((float(a), float(b)))
    return out
