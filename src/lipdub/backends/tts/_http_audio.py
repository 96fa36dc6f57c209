"""Decoding of audio returned by HTTP speech APIs (shared by the cloud TTS adapters)."""

from __future__ import annotations

import io

import numpy as np

from ...errors import StageFailed


def decode_audio_bytes(data: bytes, pcm_rate_hz: int | None, what: str) -> tuple[np.ndarray, int]:
    """Decode a speech API response body to float32 mono.

    A body that starts with ``RIFF`` (WAV), ``fLaC`` or ``OggS`` is decoded with soundfile
    (libsndfile); any other body is taken as raw 16-bit little-endian mono PCM at ``pcm_rate_hz``
    (the ``pcm_<rate>`` output formats of ElevenLabs), or refused when ``pcm_rate_hz`` is None.

    Returns:
        ``(samples, sample_rate_hz)``: float32 ``(n,)`` in [-1, 1].

    Raises:
        StageFailed: empty, undecodable, or silent-length audio (names ``what``).
    """
    import soundfile as sf

    if not data:
        raise StageFailed(f"{what} returned no audio", "check the server and the request")
    if data[:4] in (b"RIFF", b"fLaC", b"OggS"):
        try:
            samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        except Exception as exc:  # libsndfile raises its own error types
            raise StageFailed(f"{what} returned audio that cannot be decoded ({exc})", "check the output format") from exc
        samples = samples.mean(axis=1)
    elif pcm_rate_hz is not None:
        if len(data) % 2:
            data = data[:-1]
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
        rate = pcm_rate_hz
    else:
        raise StageFailed(f"{what} returned something that is not WAV/FLAC/Ogg audio ({data[:16]!r}...)",
                          "ask the server for WAV (response_format=wav)")
    if samples.size == 0:
        raise StageFailed(f"{what} returned empty audio", "check the text and the voice")
    return samples.astype(np.float32, copy=False), int(rate)
