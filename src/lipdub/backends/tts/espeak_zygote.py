"""The espeak-ng zygote: a single-threaded helper process that synthesizes every request from one
pristine, just-initialized libespeak-ng state.

Why: libespeak-ng keeps synthesis state in static variables that ``espeak_Initialize`` sets and that
every ``espeak_Synth`` carries on to the next call -- e.g. the pitch-flutter index and the phase and
resonator state in wavegen.c (``Flutter_ix``, ``wdata``, the klatt/wavegen filters). So the same text
synthesized twice in one process gives different samples and even different phoneme durations
(measured: 69395, 69623, 69627, 69833 samples for one Spanish sentence, a phoneme 0.066 vs 0.077 s),
and what comes out depends on what was synthesized before. The library has no call that resets that
state (``nm -D`` exports only the API), ``srand``/re-selecting the voice do not reset it, and
``espeak_Terminate`` + a new ``espeak_Initialize`` in one process hangs.

How: this file is run as a script (``python -I espeak_zygote.py``; it imports only the standard
library, no lipdub and no numpy, so no BLAS or torch threads; the one other thread is libespeak-ng's
fifo thread, which ``espeak_ng_Initialize`` starts in builds with ``USE_ASYNC`` and which then sits in
``pthread_cond_wait`` holding no lock: the synchronous path used here never wakes it, so forking is
safe). It loads and
initializes libespeak-ng once, writes a hello frame, then for each request frame it ``os.fork()``s a
child that selects the voice, sets the rate, synthesizes from the inherited pristine state, writes the
result into a pipe and exits; the zygote relays that result to the parent. So every synthesis equals
the first synthesis of a fresh process, bit for bit.

Wire format (both ways, on the zygote's stdin/stdout): frames of a 4-byte big-endian length then a
pickle. Hello: ``{"ok": True, "sample_rate_hz": int, "pid": int}`` or ``{"ok": False, "error": str}``.
Request: ``(text: bytes UTF-8 NUL-terminated, voice: bytes, wpm: int)``. Reply:
``{"status": "ok", "err": int (espeak_ERROR), "samples": bytes (int16 native-endian, mono),
"events": [(type, audio_position_ms, ipa_name)]}``, ``{"status": "novoice"}`` or
``{"status": "crash", "error": str}``.

The zygote dies with its parent: it exits on end of file on stdin, which the kernel gives when the
parent's end of the pipe closes, however the parent ends (the parent's other children do not hold that
end: subprocess closes inherited descriptors, and a fork of the parent closes its copy, see
``espeak._forget_zygote_in_child``). ``PR_SET_PDEATHSIG`` is not used: it fires when the *thread*
that started the zygote exits, and lipdub starts it from whichever worker thread synthesizes first.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import struct
import sys

LIBRARY_NAME = "libespeak-ng.so.1"
AUDIO_OUTPUT_SYNCHRONOUS = 2
espeakINITIALIZE_PHONEME_EVENTS = 0x0001
espeakINITIALIZE_PHONEME_IPA = 0x0002
espeakINITIALIZE_DONT_EXIT = 0x8000
#: ``espeak_Initialize`` options of both sides: phoneme events with IPA names, and no exit() on a fatal error.
INIT_OPTIONS = espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_PHONEME_IPA | espeakINITIALIZE_DONT_EXIT
POS_CHARACTER = 1
espeakCHARS_UTF8 = 1
espeakRATE = 1
EE_OK = 0
EVENT_LIST_TERMINATED = 0
EVENT_PHONEME = 7
_HEADER = struct.Struct(">I")


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` of speak_lib.h (espeak-ng 1.51)."""

    _fields_ = [
        ("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
        ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p), ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


def write_frame(fd: int, obj: object) -> None:
    """Write ``obj`` as one frame (length, pickle) to file descriptor ``fd``."""
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _read_exact(fd: int, n: int) -> bytes | None:
    parts, got = [], 0
    while got < n:
        b = os.read(fd, min(n - got, 1 << 20))
        if not b:
            return None
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def read_frame(fd: int) -> object | None:
    """One frame from ``fd``, unpickled; None at end of file (the other side closed or died)."""
    head = _read_exact(fd, _HEADER.size)
    if head is None:
        return None
    body = _read_exact(fd, _HEADER.unpack(head)[0])
    return None if body is None else pickle.loads(body)


def _init() -> tuple[ctypes.CDLL, int]:
    lib = ctypes.CDLL(LIBRARY_NAME)
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
        ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
    ]
    lib.espeak_Synchronize.argtypes = []
    rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 200, None, INIT_OPTIONS)
    return lib, int(rate)


def _synthesize(lib: ctypes.CDLL, text: bytes, voice: bytes, wpm: int) -> dict:
    """One synthesis (in the forked child): the reply dict of the module docstring."""
    chunks: list[bytes] = []
    events: list[tuple[int, int, str]] = []

    def on_synth(wav, n_samples, evs) -> int:
        if n_samples > 0 and wav:
            chunks.append(ctypes.string_at(wav, n_samples * ctypes.sizeof(ctypes.c_short)))
        i = 0
        while evs[i].type != EVENT_LIST_TERMINATED:
            ev = evs[i]
            name = ""
            if ev.type == EVENT_PHONEME:
                name = bytes(ev.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
            events.append((ev.type, ev.audio_position, name))
            i += 1
        return 0

    callback = _SynthCallback(on_synth)
    lib.espeak_SetSynthCallback(callback)
    if lib.espeak_SetVoiceByName(voice) != EE_OK:
        return {"status": "novoice"}
    lib.espeak_SetParameter(espeakRATE, wpm, 0)
    buf = ctypes.create_string_buffer(text, len(text))
    err = lib.espeak_Synth(buf, len(text), 0, POS_CHARACTER, 0, espeakCHARS_UTF8, None, None)
    lib.espeak_Synchronize()
    return {"status": "ok", "err": int(err), "samples": b"".join(chunks), "events": events}


def _serve_one(lib: ctypes.CDLL, request: tuple[bytes, bytes, int]) -> dict:
    """Fork a child for ``request``, relay its reply; a child that dies without one gives ``crash``."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: synthesize from the pristine state inherited from the zygote, then exit
        code = 0
        try:
            os.close(r)
            write_frame(w, _synthesize(lib, *request))
        except BaseException:  # noqa: BLE001 - the child must never return into the zygote's loop
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    try:
        reply = read_frame(r)
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    if reply is None:
        return {"status": "crash", "error": f"synthesis child exited without a result (wait status {status})"}
    return reply


def main() -> int:
    """Serve requests on stdin/stdout until stdin closes."""
    out_fd = os.dup(sys.stdout.fileno())  # frames only; anything the library prints goes to stderr
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    in_fd = sys.stdin.fileno()
    try:
        lib, rate = _init()
    except OSError as exc:
        write_frame(out_fd, {"ok": False, "error": f"{LIBRARY_NAME} cannot be loaded ({exc})"})
        return 1
    if rate <= 0:
        write_frame(out_fd, {"ok": False, "error": f"espeak_Initialize failed (error {rate})"})
        return 1
    write_frame(out_fd, {"ok": True, "sample_rate_hz": rate, "pid": os.getpid()})
    while True:
        request = read_frame(in_fd)
        if request is None:
            return 0
        write_frame(out_fd, _serve_one(lib, request))


if __name__ == "__main__":
    sys.exit(main())
