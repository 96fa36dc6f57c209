"""Voice figure of a dub (DESIGN.md section 4): how close each dubbed voice is to the source speaker.

Resemblyzer (GE2E d-vectors, Wan et al., "Generalized end-to-end loss for speaker verification",
ICASSP 2018): one utterance embedding of all of a speaker's source speech (their diarized turns) and
one of all of their dubbed lines (the dub's dialogue stem over the placed lines); the figure is the
cosine similarity of the two L2-normalized embeddings (``VoiceEncoder.embed_utterance`` after
``preprocess_wav``: -30 dBFS volume normalization and webrtcvad silence trimming).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..voice.encoder import resemblyzer_module, voice_encoder

RATE_HZ = 16000
MIN_SPEECH_S = 1.0  # shorter speech gives an unreliable d-vector: reported as None


@dataclass
class VoiceFigure:
    """Similarity of one speaker's source and dubbed voice (cosine in [-1, 1]; None when either side
    has less than 1 s of speech)."""

    speaker: str
    similarity: float | None
    source_speech_s: float
    dub_speech_s: float

    def as_dict(self) -> dict:
        return asdict(self)


def _gather(audio: np.ndarray, spans_s: list[tuple[float, float]]) -> np.ndarray:
    parts = [audio[max(0, int(a * RATE_HZ)):max(0, int(b * RATE_HZ))] for a, b in spans_s if b > a]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def speaker_similarity(source_16k: np.ndarray, dub_16k: np.ndarray, source_spans: dict[str, list[tuple[float, float]]],
                       dub_spans: dict[str, list[tuple[float, float]]]) -> list[VoiceFigure]:
    """Resemblyzer cosine similarity per speaker.

    Args:
        source_16k / dub_16k: mono float32 speech at 16 kHz (source dialogue, dub dialogue stem).
        source_spans / dub_spans: per speaker id, the ``(start_s, end_s)`` spans of their speech.
    Raises:
        BackendUnavailable: resemblyzer (or its bundled weights) is missing.
    """
    module, _ = resemblyzer_module()
    encoder = voice_encoder()
    out = []
    for spk in sorted(set(source_spans) | set(dub_spans)):
        a = _gather(source_16k, source_spans.get(spk, []))
        b = _gather(dub_16k, dub_spans.get(spk, []))
        fig = VoiceFigure(spk, None, round(len(a) / RATE_HZ, 3), round(len(b) / RATE_HZ, 3))
        if len(a) >= MIN_SPEECH_S * RATE_HZ and len(b) >= MIN_SPEECH_S * RATE_HZ:
            wa = module.preprocess_wav(a.astype(np.float32), source_sr=RATE_HZ)
            wb = module.preprocess_wav(b.astype(np.float32), source_sr=RATE_HZ)
            if len(wa) >= MIN_SPEECH_S * RATE_HZ and len(wb) >= MIN_SPEECH_S * RATE_HZ:
                ea, eb = encoder.embed_utterance(wa), encoder.embed_utterance(wb)
                fig.similarity = round(float(np.dot(ea, eb) / (np.linalg.norm(ea) * np.linalg.norm(eb))), 4)
        out.append(fig)
    return out
