"""``lipdub lipsync VIDEO AUDIO -o OUT``: lip-sync any video to any speech.

Like Wav2Lip's inference script, but with the whole face analysis (shots, tracks, skip flags) and the
compositor behind it: the chosen face track is re-animated to AUDIO on every frame it can be (not
flagged by the faces stage, and before the end of AUDIO), every other frame and every other face stays
as it was, and AUDIO becomes the soundtrack (trimmed or padded with silence to the video's length, so
the frame count and fps are the source's).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import av
import numpy as np
import soundfile as sf

from ..contracts.faces import FaceAnalysis, FaceTrack
from ..contracts.lipsync import LIPSYNC_BACKENDS
from ..contracts.transcribe import TRANSCRIBERS
from ..errors import ConfigError, InputError, LipdubError, MissingWeights
from ..faces.analyze import analyze_video
from ..faces.shots import detect_shots
from ..media.probe import ANALYSIS_RATE_HZ, MIX_RATE_HZ, decode_audio, probe, probe_video, video_frame_times
from ..media.render import check_rotation, rotation_args
from ..runtime import apply_thread_policy
from ..tools import run_ffmpeg
from .align import transcribe_and_align
from .render import DEFAULT_CRF, DEFAULT_PRESET
from .tracks import TrackRequest, lipsync_tracks

log = logging.getLogger(__name__)


@dataclass
class LipsyncResult:
    output: Path
    track: int | None
    frames: int
    details: dict


def lipsync_video(
    video: Path,
    audio: Path,
    output: Path,
    *,
    backend: str = "retrieval",
    backend_options: dict | None = None,
    face: int | None = None,
    work_dir: Path | None = None,
    lossless: bool = False,
    video_preset: str = DEFAULT_PRESET,
    video_crf: int = DEFAULT_CRF,
    asr_model: str = "base",
    progress: Callable[[str, int, int], None] | None = None,
) -> LipsyncResult:
    """Re-animate one face of ``video`` to the speech in ``audio`` and write ``output`` (.mp4/.mkv/.mov).

    Args:
        backend: a lip-sync backend name (``retrieval``, ``wav2lip``, ``wav2lip_gan``, ``external``).
        backend_options: keyword options of the backend (e.g. ``checkpoint``, ``device``, ``pads``,
            ``batch_size``, ``sharpen`` for ``wav2lip``; ``command`` for ``external``); an option the
            backend does not take is a :class:`ConfigError`, never ignored.
        face: the face track to animate (ids as printed by ``lipdub faces``); default: the track on
            screen longest.
        work_dir: where the face analysis is cached (default: ``<output>.lipdub/``).
        lossless: encode the video losslessly (x264 qp 0); else x264 ``video_preset`` at ``video_crf``.
        asr_model: Whisper model that transcribes AUDIO and the video's soundtrack for a backend that
            uses phonemes (``retrieval``), before they are aligned.

    Raises:
        InputError: ``video`` has no video stream or no usable face; ``audio`` unreadable.
        ConfigError: unknown backend or face id.
    """
    impl = create_backend(backend, backend_options)
    probe_video(video)  # a text file, an empty or truncated video: one clear InputError before any work
    for what, path in (("video", video), ("audio", audio)):
        if os.path.realpath(output) == os.path.realpath(path):
            raise InputError(f"-o {output} is the {what} to lip-sync: it would be overwritten", "pass another -o")
    vinfo = probe(video) if _has_audio(video) else None
    frame_times = video_frame_times(video)
    if len(frame_times) == 0:
        raise InputError(f"{video} has no video frames", "pass a video")
    ainfo = probe(audio)
    dub48, dub16 = decode_audio(audio, ainfo)
    duration_s = float(frame_times[-1] + np.median(np.diff(frame_times)) if len(frame_times) > 1 else 0.04)
    speech_end_s = len(dub16) / ANALYSIS_RATE_HZ  # frames after the end of AUDIO are left as they were
    n16 = int(round(duration_s * ANALYSIS_RATE_HZ))
    dub16 = np.pad(dub16, (0, max(0, n16 - len(dub16))))[:n16]
    work = work_dir or output.with_name(output.stem + ".lipdub")
    apply_thread_policy()
    with ThreadPoolExecutor(1, thread_name_prefix="lipdub-faces") as pool:  # the faces beside the transcription
        faces = pool.submit(_face_analysis, video, frame_times, work / "faces", progress)
        source16 = decode_audio(video, vinfo)[1] if vinfo is not None else np.zeros(n16, dtype=np.float32)
        details: dict = {}
        try:
            dub_ph, src_ph = _phonemes(impl, dub16, source16, details, asr_model)
        except BaseException:
            faces.cancel()
            raise
        analysis = faces.result()
    track = _pick_track(analysis, face, video)
    work.mkdir(parents=True, exist_ok=True)
    silent = work / "lipsync_video.mp4"
    request = TrackRequest(track, [(-np.inf, speech_end_s)], dub16, dub_ph, source_phonemes=src_ph)
    run = lipsync_tracks(impl, video, analysis, frame_times, source16, [request], silent,
                         sample_rate_hz=ANALYSIS_RATE_HZ, lossless=lossless, preset=video_preset, crf=video_crf,
                         progress=(lambda d, t: progress("lipsync", d, t)) if progress else None)
    if run.video is None:
        raise InputError(f"face track {track.id} has no frame that can be lip-synced (turned away, too small or occluded)", "choose another --face")
    _mux(silent, dub48, duration_s, analysis.rotation_deg % 360, work, output)
    plan, _ = run.plans[0]
    details.update({**run.render, **{k: v for k, v in plan.details.items() if isinstance(v, (int, float, str))}})
    return LipsyncResult(output, track.id, int(len(plan.frames)), details)



def _mux(silent: Path, dub48: np.ndarray, duration_s: float, ccw: int, work: Path, output: Path) -> None:
    """``output``: the lip-synced video stream ``silent`` with AUDIO (float32 ``(n, 2)`` at
    :data:`MIX_RATE_HZ`, cut or padded to ``duration_s``) as AAC, and the source's display rotation
    ``ccw`` (degrees counter-clockwise)."""
    n48 = int(round(duration_s * MIX_RATE_HZ))
    mix = dub48[:n48] if len(dub48) >= n48 else np.pad(dub48, ((0, n48 - len(dub48)), (0, 0)))
    wav = work / "lipsync_audio.wav"
    sf.write(str(wav), mix, MIX_RATE_HZ, subtype="PCM_24")
    output.parent.mkdir(parents=True, exist_ok=True)
    before, rot_out = rotation_args(ccw) if ccw else ([], [])
    args = [*before, "-i", str(silent), "-i", str(wav), "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", *rot_out,
            "-c:a", "aac", "-b:a", "192k"]
    run_ffmpeg([*args, str(output)], f"writing {output.name}")
    if ccw:
        check_rotation(output, ccw)

def _phonemes(backend, dub16: np.ndarray, source16: np.ndarray, details: dict, asr_model: str):
    """For a backend that uses phonemes: the speech of AUDIO and of the video's own soundtrack
    transcribed (faster-whisper, ``asr_model``) and aligned (:func:`lipdub.lipsync.align.transcribe_and_align`);
    ``(None, None)`` otherwise. A soundtrack that cannot be aligned (no speech, no espeak voice) gives
    None and the backend uses its acoustic model; ``details`` says why."""
    if not backend.uses_phonemes:
        return None, None
    transcriber = TRANSCRIBERS.create("faster-whisper", model=asr_model)
    out = []
    for name, audio in (("dub", dub16), ("source", source16)):
        try:
            alignment, transcript = transcribe_and_align(audio, ANALYSIS_RATE_HZ, transcriber=transcriber)
            details[f"{name}_language"], details[f"{name}_phonemes"] = transcript.language, len(alignment.phonemes)
            out.append([(p.start_s, p.end_s, p.phoneme) for p in alignment.phonemes] or None)
        except LipdubError as exc:
            if isinstance(exc, MissingWeights):
                raise
            details[f"{name}_phonemes"] = 0
            details[f"{name}_note"] = str(exc)
            out.append(None)
    return out[0], out[1]


def _face_analysis(video: Path, frame_times: np.ndarray, faces_dir: Path, progress) -> FaceAnalysis:
    """The face analysis of ``video``, cached in ``faces_dir``."""
    if (faces_dir / "faces.json").exists():
        return FaceAnalysis.load(faces_dir)
    shots = detect_shots(video, len(frame_times))
    analysis = analyze_video(video, shots, progress=(lambda d, t: progress("faces", d, t)) if progress else None)
    analysis.save(faces_dir)
    return analysis


def _pick_track(analysis: FaceAnalysis, face: int | None, video: Path) -> FaceTrack:
    """Track ``face``, or the one with the most usable frames.

    Raises:
        InputError: no face at all. ConfigError: no track ``face``.
    """
    if not analysis.tracks:
        raise InputError(f"no face found in {video}", "lip-sync needs a visible face")
    if face is None:
        return max(analysis.tracks, key=lambda t: int((t.skip == 0).sum()))
    track = next((t for t in analysis.tracks if t.id == face), None)
    if track is None:
        raise ConfigError(f"no face track {face} in {video}", f"choose one of {[t.id for t in analysis.tracks]} (see lipdub faces)")
    return track


def parse_pads(text: str) -> tuple[int, int, int, int]:
    """``"TOP,BOTTOM,LEFT,RIGHT"`` (commas or spaces) -> 4 integer pixel pads.

    Raises:
        ConfigError: not 4 integers.
    """
    parts = text.replace(",", " ").split()
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise ConfigError(f"--pads {text!r} is not 4 integers", "write TOP,BOTTOM,LEFT,RIGHT in pixels, e.g. 0,10,0,0")
    return values  # type: ignore[return-value]


def create_backend(name: str, options: dict | None = None):
    """Create lip-sync backend ``name`` with ``options`` (None values dropped).

    Raises:
        ConfigError: unknown backend, or an option it does not take (named, with the ones it takes).
    """
    return LIPSYNC_BACKENDS.create_checked(name, options)


def _has_audio(path: Path) -> bool:
    try:
        with av.open(str(path)) as c:
            return bool(c.streams.audio)
    except Exception:
        return False
