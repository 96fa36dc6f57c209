"""espeak-ng text-to-speech through libespeak-ng (ctypes), with phoneme timings.

Drives the C API of ``libespeak-ng.so.1`` directly (declarations from
``/usr/include/espeak-ng/speak_lib.h`` of espeak-ng 1.51, API revision 12): synchronous output
(``AUDIO_OUTPUT_SYNCHRONOUS``), a synth callback that collects the 16-bit samples and the event list,
and ``espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_PHONEME_IPA`` so that every phoneme is
reported as an ``espeakEVENT_PHONEME`` event carrying its IPA name and its start time in the audio.

The library keeps global state (one current voice, one set of parameters, one callback), so every use
goes through a module lock. Voice listing and ``espeak_TextToPhonemes`` run in this process (the
library is initialized once per process). Audio synthesis does not: libespeak-ng carries wavegen.c's
state (pitch flutter index, phases, filters) from one ``espeak_Synth`` to the next and cannot reset it,
so in-process output would depend on what was synthesized before. Every synthesis runs instead in a
child forked from the pristine state of a single-threaded helper process
(:mod:`lipdub.backends.tts.espeak_zygote`), so its output depends only on (text, voice, rate) and
equals a fresh process's first synthesis bit for bit.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import subprocess
import sys
import threading
from dataclasses import dataclass

import numpy as np

from ...contracts.synthesize import PhonemeTiming, Speech, TtsBackend
from ...errors import BackendUnavailable, ConfigError, StageFailed
from ...languages import Language
from . import espeak_zygote
from .espeak_zygote import AUDIO_OUTPUT_SYNCHRONOUS, EE_OK, INIT_OPTIONS, LIBRARY_NAME, espeakCHARS_UTF8  # one definition, the zygote's (stdlib only)

log = logging.getLogger(__name__)

# speak_lib.h (espeak-ng 1.51) constants.
#: ``espeak_TextToPhonemes`` phoneme mode bit: IPA names (UTF-8) instead of espeak's ASCII names.
espeakPHONEMES_IPA = 0x02

espeakEVENT_LIST_TERMINATED = 0
espeakEVENT_WORD = 1
espeakEVENT_SENTENCE = 2
espeakEVENT_MARK = 3
espeakEVENT_PLAY = 4
espeakEVENT_END = 5
espeakEVENT_MSG_TERMINATED = 6
espeakEVENT_PHONEME = 7
espeakEVENT_SAMPLERATE = 8

#: espeak's default speaking rate in words per minute (``espeakRATE_NORMAL``); ``rate=1.0`` maps to it.
RATE_NORMAL_WPM = 175
#: Accepted range of ``espeakRATE`` (``espeakRATE_MINIMUM`` .. ``espeakRATE_MAXIMUM``), words per minute.
RATE_MIN_WPM = 80
RATE_MAX_WPM = 450


class _Voice(ctypes.Structure):
    """``espeak_VOICE`` of speak_lib.h."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # (priority byte, NUL-terminated name)*, then an extra NUL
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


@dataclass(frozen=True)
class EspeakVoice:
    """One installed espeak-ng voice.

    Attributes:
        name: the voice's given name (``"Spanish_(Spain)"``).
        identifier: file name under espeak-ng-data/voices (``"roa/es"``).
        languages: ``(language, priority)`` pairs; a lower priority number is preferred.
    """

    name: str
    identifier: str
    languages: tuple[tuple[str, int], ...]

    @property
    def short_name(self) -> str:
        """The name ``espeak-ng -v`` takes (``"es"``, ``"en-us"``): the identifier's file name, lower case."""
        return self.identifier.rsplit("/", 1)[-1].lower()


_lock = threading.RLock()
_lib: ctypes.CDLL | None = None
_sample_rate_hz: int = 0
_voices: list[EspeakVoice] | None = None


def _load() -> ctypes.CDLL:
    """Load and initialize libespeak-ng once (caller holds ``_lock``)."""
    global _lib, _sample_rate_hz
    if _lib is not None:
        return _lib
    try:
        lib = ctypes.CDLL(LIBRARY_NAME)
    except OSError as exc:
        raise BackendUnavailable(
            f"espeak-ng library {LIBRARY_NAME} cannot be loaded ({exc})",
            "install it: apt-get install libespeak-ng1 espeak-ng-data",
        ) from exc
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
    lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
    lib.espeak_Info.restype = ctypes.c_char_p
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 200, None, INIT_OPTIONS)
    if rate <= 0:
        raise BackendUnavailable(
            f"espeak-ng failed to initialize (error {rate})",
            "check that espeak-ng-data is installed: apt-get install espeak-ng-data",
        )
    _lib, _sample_rate_hz = lib, int(rate)
    log.debug("libespeak-ng initialized at %d Hz", rate)
    return lib


#: The zygote process (:mod:`.espeak_zygote`) and its sample rate; only touched under ``_lock``.
_zygote: subprocess.Popen | None = None
_zygote_rate_hz: int = 0


def _stop_zygote() -> None:
    """Close the zygote's stdin (it exits on end of file) and reap it; registered with atexit."""
    global _zygote
    proc, _zygote = _zygote, None
    if proc is None:
        return
    try:
        proc.stdin.close()
        proc.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()
        proc.wait()


def _start_zygote() -> subprocess.Popen:
    """The running zygote; started on first use (caller holds ``_lock``), after reading its hello frame.

    ``python -I`` runs the script by path: it imports no lipdub and no numpy, so the only thread besides
    its main one is libespeak-ng's own idle fifo thread (see :mod:`.espeak_zygote`), and it is safe to
    fork. This process, with its BLAS and torch threads, is never forked.

    Raises:
        BackendUnavailable: the zygote could not load or initialize libespeak-ng, or died at start-up.
        StageFailed: the zygote started earlier has died since (killed, or a libespeak-ng crash); it is
            not replaced silently: the call fails, and the next call starts a new one.
    """
    global _zygote, _zygote_rate_hz
    if _zygote is not None:
        if _zygote.poll() is None:
            return _zygote
        status = _zygote.returncode
        _stop_zygote()
        raise StageFailed(f"the espeak-ng helper process died (exit status {status})",
                          "retry: the next synthesis starts a new helper")
    proc = subprocess.Popen([sys.executable, "-I", espeak_zygote.__file__], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, bufsize=0, close_fds=True)
    hello = espeak_zygote.read_frame(proc.stdout.fileno())
    if not hello or not hello.get("ok"):
        proc.kill()
        proc.wait()
        why = hello.get("error") if hello else f"it exited with status {proc.returncode}"
        raise BackendUnavailable(f"the espeak-ng helper process could not start: {why}",
                                 "install libespeak-ng1 and espeak-ng-data (apt-get install libespeak-ng1 espeak-ng-data)")
    _zygote, _zygote_rate_hz = proc, int(hello["sample_rate_hz"])
    log.debug("espeak-ng zygote pid %d at %d Hz", hello["pid"], _zygote_rate_hz)
    return proc


def _zygote_synth(text: bytes, voice: bytes, wpm: int) -> tuple[dict, int]:
    """One synthesis in a fresh child of the zygote (caller holds ``_lock``).

    Args:
        text: UTF-8 text, NUL-terminated. voice: espeak voice name (UTF-8). wpm: ``espeakRATE``.

    Returns:
        ``(reply, sample_rate_hz)``: the reply dict of :mod:`.espeak_zygote` (``status`` ``"ok"`` with
        ``err``, ``samples`` as native int16 bytes and ``events``; or ``"novoice"``) and the rate in Hz.

    Raises:
        BackendUnavailable: the zygote cannot start.
        StageFailed: the zygote or its synthesis child died (a crash of libespeak-ng); the next call
            starts a new zygote. There is no in-process fallback: its output would not be reproducible.
    """
    proc = _start_zygote()
    try:
        espeak_zygote.write_frame(proc.stdin.fileno(), (text, voice, wpm))
        reply = espeak_zygote.read_frame(proc.stdout.fileno())
    except OSError:
        reply = None
    if reply is None:
        _stop_zygote()
        raise StageFailed("the espeak-ng helper process died during synthesis",
                          "check the text and the voice; the next synthesis starts a new helper")
    if reply["status"] == "crash":
        raise StageFailed(f"espeak-ng crashed synthesizing {text[:40].decode('utf-8', 'replace')!r}: {reply['error']}",
                          "check the text and the voice")
    return reply, _zygote_rate_hz


def _forget_zygote_in_child() -> None:
    """After a fork of this process: the child closes its copies of the zygote's pipes and starts its
    own zygote when it synthesizes (two processes on one pipe would mix their frames)."""
    global _zygote
    proc, _zygote = _zygote, None
    if proc is not None:
        for f in (proc.stdin, proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        proc.returncode = 0  # not ours to reap or kill


atexit.register(_stop_zygote)
os.register_at_fork(after_in_child=_forget_zygote_in_child)


def _parse_languages(ptr: int | None) -> tuple[tuple[str, int], ...]:
    out = []
    if not ptr:
        return ()
    pos = ptr
    while True:
        priority = ctypes.c_ubyte.from_address(pos).value
        if priority == 0:
            break
        name = ctypes.string_at(pos + 1)
        out.append((name.decode("utf-8", "replace").lower(), int(priority)))
        pos += 1 + len(name) + 1
    return tuple(out)


def list_voices() -> list[EspeakVoice]:
    """All installed espeak-ng voices (``espeak_ListVoices(NULL)``), without MBROLA voices and variants.

    MBROLA voices (identifier ``mb/...``) need the separate mbrola program and databases, so they are
    left out; variants (``!v/...``) are applied with ``voice="es+m3"`` instead.

    Raises:
        BackendUnavailable: libespeak-ng is missing or cannot initialize.
    """
    global _voices
    with _lock:
        if _voices is None:
            lib = _load()
            arr = lib.espeak_ListVoices(None)
            voices = []
            i = 0
            while arr[i]:
                v = arr[i].contents
                ident = (v.identifier or b"").decode("utf-8", "replace")
                if not ident.startswith(("mb/", "!v/")):
                    voices.append(EspeakVoice(
                        name=(v.name or b"").decode("utf-8", "replace"),
                        identifier=ident,
                        languages=_parse_languages(v.languages),
                    ))
                i += 1
            _voices = voices
        return list(_voices)


def voice_for_language(language: Language) -> EspeakVoice | None:
    """The preferred espeak-ng voice for ``language``, or None when espeak has none.

    A voice qualifies when one of its languages is the code (``"es"``) or a dialect of it
    (``"es-419"``); among those, espeak's own priority numbers decide (lowest first), then an exact
    code match, then the identifier (so the choice is deterministic). ``en`` gives en-gb (priority 2).
    """
    code = language.code.lower()
    best: tuple[int, int, str, EspeakVoice] | None = None
    for v in list_voices():
        for lang, prio in v.languages:
            if lang == code or lang.startswith(code + "-"):
                key = (prio, 0 if lang == code else 1, v.identifier, v)
                if best is None or key[:3] < best[:3]:
                    best = key
    return best[3] if best else None


def _find_voice(name: str) -> EspeakVoice | None:
    base = name.split("+", 1)[0].strip().lower()
    for v in list_voices():
        if base in (v.short_name, v.name.lower(), v.identifier.lower()):
            return v
    return None


#: Separator put between phonemes by :func:`text_to_phonemes` (not an IPA symbol).
PHONEME_SEPARATOR = "_"


def text_to_phonemes(text: str, voice: str) -> list[list[list[str]]]:
    """IPA phonemes of ``text`` as espeak-ng ``voice`` would speak it, without synthesizing.

    Calls ``espeak_TextToPhonemes`` (speak_lib.h, API revision 12) in IPA mode with
    :data:`PHONEME_SEPARATOR` between phoneme names (bits 8-23 of the phoneme mode), clause by clause
    (espeak stops at sentence ends and at commas, colons, semicolons). Punctuation is not returned.

    Args:
        text: UTF-8 text (plain, not SSML).
        voice: espeak voice name (``"es"``, ``"en-us"``, ``"fr-fr"``).

    Returns:
        One list per clause, of words, each a list of phoneme names as espeak writes them in IPA:
        multi-letter phonemes stay whole (``"tʃ"``, ``"eɪ"``, ``"ɑː"``) and primary/secondary stress
        marks (``ˈ``, ``ˌ``) are prefixed to the vowel they fall on (``"ˈa"``). Empty clauses are dropped.

    Raises:
        ConfigError: espeak-ng has no voice ``voice``.
        BackendUnavailable: libespeak-ng is missing.
    """
    data = text.encode("utf-8") + b"\0"
    mode = espeakPHONEMES_IPA | (ord(PHONEME_SEPARATOR) << 8)
    clauses: list[list[list[str]]] = []
    with _lock:
        lib = _load()
        if lib.espeak_SetVoiceByName(voice.encode("utf-8")) != EE_OK:
            raise ConfigError(f"espeak-ng has no voice {voice!r}", "list voices with `espeak-ng --voices`")
        buf = ctypes.create_string_buffer(data, len(data))
        ptr = ctypes.c_void_p(ctypes.addressof(buf))
        while ptr.value:
            out = lib.espeak_TextToPhonemes(ctypes.byref(ptr), espeakCHARS_UTF8, mode)
            words = []
            for word in (out or b"").decode("utf-8", "replace").split():
                phones = [p for p in word.split(PHONEME_SEPARATOR) if p]
                if phones:
                    words.append(phones)
            if words:
                clauses.append(words)
    return clauses


#: espeak-ng voice variants by register, in the order speakers of one register get them.
VARIANTS = {"female": ("f3", "f2", "f4", "f1", "f5"), "male": ("m3", "m1", "m2", "m4", "m5", "m6", "m7", "m8")}


class EspeakTts(TtsBackend):
    """espeak-ng formant synthesis (about 100 languages) with phoneme timings.

    Args:
        voice: default espeak voice name for every call that gives none, e.g. ``"es"``, ``"en-us"``,
            ``"es+m3"`` (voice plus variant, as ``espeak-ng -v`` takes). ``None``: the preferred voice
            of the requested language (:func:`voice_for_language`).

    Output: float32 mono samples in [-1, 1] at the library's rate (22050 Hz for espeak-ng 1.51), and
    one :class:`PhonemeTiming` per ``espeakEVENT_PHONEME`` event with its IPA name; a phoneme ends where
    the next event (phoneme, word, clause end) starts, the last one at the end of the audio. Language
    switch markers (``"(en)"``) are not phonemes; they are logged as a warning, since they mean espeak
    read words with another language's rules (Debian's espeak-ng 1.51 reads Hanzi that way for ``zh``,
    and its ``ja`` voice reads kana only).
    """

    name = "espeak-ng"

    def __init__(self, *, voice: str | None = None) -> None:
        self.voice = voice

    @classmethod
    def base_voice(cls, language: Language, voice_register: str, rank: int) -> str | None:
        """The language's voice plus the ``rank``-th variant of the register (:data:`VARIANTS`)."""
        found = voice_for_language(language)
        if found is None:
            return None
        variants = VARIANTS.get(voice_register, VARIANTS["male"])
        return f"{found.short_name}+{variants[rank % len(variants)]}"

    @classmethod
    def auto_supports(cls, language: Language, **_: object) -> bool:
        """``--tts auto`` takes espeak-ng for every language it has a voice for (after piper and kokoro)."""
        return voice_for_language(language) is not None

    @classmethod
    def check(cls) -> str:
        """Load libespeak-ng and count its voices.

        Raises:
            BackendUnavailable: the library is missing or cannot initialize.
        """
        with _lock:
            lib = _load()
            version = (lib.espeak_Info(None) or b"?").decode()
            n = len(list_voices())
            return f"libespeak-ng {version}, {n} voices, {_sample_rate_hz} Hz"

    def supports(self, language: Language) -> bool:
        """True when espeak-ng has a voice for ``language``."""
        return voice_for_language(language) is not None

    def _resolve_voice(self, language: Language, voice: str | None) -> str:
        voice = voice or self.voice
        if voice is None:
            found = voice_for_language(language)
            if found is None:
                raise ConfigError(
                    f"espeak-ng has no voice for {language.name} ({language.code})",
                    "list its voices with `espeak-ng --voices`, or pick another TTS backend",
                )
            return found.short_name
        found = _find_voice(voice)
        if found is not None:
            code = language.code.lower()
            if not any(lang == code or lang.startswith(code + "-") for lang, _ in found.languages):
                langs = ", ".join(lang for lang, _ in found.languages)
                raise ConfigError(
                    f"espeak-ng voice {voice!r} speaks {langs}, not {language.name} ({language.code})",
                    f"pick a {language.code} voice (see `espeak-ng --voices={language.code}`)",
                )
        return voice

    def synthesize(self, text: str, language: Language, voice: str | None = None, rate: float = 1.0) -> Speech:
        """Speak ``text`` in ``language``.

        Args:
            text: UTF-8 text (plain, not SSML).
            language: the language to speak; picks the voice unless ``voice`` is given.
            voice: espeak voice name, optionally with a variant (``"es+m3"``); overrides the
                constructor's ``voice``. Must speak ``language`` when espeak lists it.
            rate: speaking rate relative to espeak's normal 175 words per minute
                (``espeakRATE = round(175 * rate)``); must give 80..450 wpm (rate about 0.46..2.57).

        Returns:
            :class:`Speech` with float32 samples in [-1, 1] at 22050 Hz, phoneme timings (IPA) and
            the voice name used.

        Raises:
            ConfigError: no voice for the language, unknown voice, voice of another language, or a
                rate out of range.
            BackendUnavailable: libespeak-ng is missing.
            StageFailed: espeak-ng returned an error or no audio.
        """
        if not text.strip():
            raise ConfigError("nothing to speak: the text is empty", "give the line some text")
        wpm = int(round(RATE_NORMAL_WPM * float(rate)))
        if not RATE_MIN_WPM <= wpm <= RATE_MAX_WPM:
            raise ConfigError(
                f"espeak-ng rate {rate} gives {wpm} words per minute, outside {RATE_MIN_WPM}..{RATE_MAX_WPM}",
                f"use a rate between {RATE_MIN_WPM / RATE_NORMAL_WPM:.2f} and {RATE_MAX_WPM / RATE_NORMAL_WPM:.2f}",
            )
        voice_name = self._resolve_voice(language, voice)
        data = text.encode("utf-8") + b"\0"
        with _lock:
            reply, sample_rate_hz = _zygote_synth(data, voice_name.encode("utf-8"), wpm)
        if reply["status"] == "novoice":
            raise ConfigError(
                f"espeak-ng has no voice {voice_name!r}",
                "list voices with `espeak-ng --voices` (variants: `espeak-ng --voices=variant`)",
            )
        err, events = reply["err"], reply["events"]
        if err != EE_OK:
            raise StageFailed(f"espeak-ng failed to synthesize (error {err})", "check the text and the voice")
        pcm = np.frombuffer(reply["samples"], dtype=np.int16)
        samples = (pcm.astype(np.float32) / 32768.0) if pcm.size else np.zeros(0, np.float32)
        if samples.size == 0:
            raise StageFailed(f"espeak-ng produced no audio for {text[:40]!r}", "check the text and the voice")
        duration_s = samples.size / sample_rate_hz
        phonemes = _phoneme_timings(events, duration_s)
        switches = sorted({name for t, _, name in events if t == espeakEVENT_PHONEME and _is_language_switch(name)})
        if switches:
            # espeak-ng read some words with another language's rules (e.g. Hanzi missing from the
            # installed cmn dictionary are read as English): the line will sound wrong.
            log.warning(
                "espeak-ng voice %s switched language %s while speaking %r; check the output or use another TTS",
                voice_name, " ".join(switches), text[:60],
            )
        log.debug("espeak-ng %s: %d chars -> %.2f s, %d phonemes", voice_name, len(text), duration_s, len(phonemes))
        return Speech(samples=samples, sample_rate_hz=sample_rate_hz, phonemes=phonemes, voice=voice_name)


def _is_language_switch(name: str) -> bool:
    """espeak reports a change of language inside a line as a pseudo-phoneme ``"(en)"``."""
    return name.startswith("(") and name.endswith(")")


def _phoneme_timings(events: list[tuple[int, int, str]], duration_s: float) -> list[PhonemeTiming]:
    """Phoneme spans from the event list: a phoneme ends where the next timed event starts."""
    timed = [(t, pos_ms / 1000.0, name) for t, pos_ms, name in events
             if t in (espeakEVENT_WORD, espeakEVENT_SENTENCE, espeakEVENT_END, espeakEVENT_PHONEME,
                      espeakEVENT_MSG_TERMINATED)]
    out: list[PhonemeTiming] = []
    for i, (t, start_s, name) in enumerate(timed):
        if t != espeakEVENT_PHONEME or not name or _is_language_switch(name):
            continue
        end_s = duration_s
        for _, later_s, _ in timed[i + 1:]:
            if later_s > start_s:
                end_s = later_s
                break
        start_s = min(start_s, duration_s)
        end_s = min(max(end_s, start_s), duration_s)
        out.append(PhonemeTiming(start_s=start_s, end_s=end_s, phoneme=name))
    return out
