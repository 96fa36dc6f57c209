"""Lip-sync of several face tracks of one video: the code path shared by the pipeline's ``lipsync``
stage and ``lipdub lipsync VIDEO AUDIO``.

For each :class:`TrackRequest` (a face track, the time spans to re-animate and the dub speech that
drives it), the frames to re-animate are the track's frames inside the spans that the faces stage did
not flag (pose, size, occlusion, detection gap); the backend plans them; then the two-pass renderer
(:func:`lipdub.lipsync.render.render_lipsync`) composites every plan into one video stream.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..contracts.faces import FaceAnalysis, FaceTrack
from ..contracts.lipsync import LipsyncPlan
from ..errors import InputError
from .render import DEFAULT_CRF, DEFAULT_PRESET, render_lipsync

#: The note recorded for a track whose every frame in the spans is flagged.
ALL_SKIPPED = "every frame skipped (pose, size or occlusion)"
#: The start of the note of a track the backend could not plan (left as decoded).
NOT_PLANNED = "not lip-synced, left as decoded"

log = logging.getLogger(__name__)


@dataclass
class TrackRequest:
    """One face track to re-animate.

    Attributes:
        track: the face track.
        spans_s: ``(start_s, end_s)`` spans of the video to re-animate (the dubbed lines, padded).
        dub_audio: the speech that drives this track over the whole video, float32 mono
            ``(n,)`` at the analysis rate (16 kHz).
        phonemes: ``(start_s, end_s, phoneme)`` of that speech in video time, or None.
        source_phonemes: the same for this speaker's own speech in the source (labels the actor's footage).
        label: who this track is in the details (a speaker id).
        source_audio: this actor's own source speech over the whole video (float32 mono, 16 kHz;
            :func:`speaker_speech`), which backends that learn from the source fit on; None: the
            ``source_audio`` given to :func:`lipsync_tracks`.
    """

    track: FaceTrack
    spans_s: list[tuple[float, float]]
    dub_audio: np.ndarray
    phonemes: list[tuple[float, float, str]] | None = None
    label: str = ""
    source_audio: np.ndarray | None = None
    source_phonemes: list[tuple[float, float, str]] | None = None


@dataclass
class LipsyncRun:
    """The outcome: the plans rendered, per-track details (keyed by track id as a string), the
    renderer's figures, and the display-rotation tag of the video written (None: nothing planned)."""

    plans: list[tuple[LipsyncPlan, FaceTrack]] = field(default_factory=list)
    tracks: dict[str, dict] = field(default_factory=dict)
    render: dict = field(default_factory=dict)
    video: Path | None = None
    rotate_tag_deg: int = 0


def speaker_speech(audio: np.ndarray, sample_rate_hz: int, turns_s: list[tuple[float, float]]) -> np.ndarray:
    """``audio`` (float32 mono) with everything outside ``turns_s`` (one speaker's diarized turns,
    seconds) silenced: that speaker's own voice, for a backend that learns a face's mouth from the
    speech it says. In a scene with several speakers the whole dialogue stem would pair this face's
    still mouth with the others' speech."""
    out = np.zeros_like(audio)
    for start_s, end_s in turns_s:
        a, b = max(0, int(round(start_s * sample_rate_hz))), min(len(audio), int(round(end_s * sample_rate_hz)))
        if b > a:
            out[a:b] = audio[a:b]
    return out


def frames_to_animate(track: FaceTrack, frame_times: np.ndarray, spans_s: list[tuple[float, float]], n_frames: int) -> np.ndarray:
    """int64 frame indices of ``track`` inside ``spans_s`` (seconds) that are not flagged by the faces stage."""
    in_span = np.zeros(n_frames, dtype=bool)
    for a, b in spans_s:
        in_span[int(np.searchsorted(frame_times, a)):int(np.searchsorted(frame_times, b))] = True
    return track.frames[(track.skip == 0) & in_span[track.frames]].astype(np.int64)


def _scalars(d: dict) -> dict:
    return {k: v for k, v in d.items() if isinstance(v, (int, float, str))}


def lipsync_tracks(backend, source: Path, analysis: FaceAnalysis, frame_times: np.ndarray, source_audio: np.ndarray,
                   requests: Iterable[TrackRequest], output: Path, *, sample_rate_hz: int, lossless: bool = False,
                   preset: str = DEFAULT_PRESET, crf: int = DEFAULT_CRF, progress: Callable[[int, int], None] | None = None,
                   skip_unusable: bool = False) -> LipsyncRun:
    """Plan every request with ``backend`` and render the planned tracks into ``output`` (video only).

    Args:
        backend: a :class:`~lipdub.contracts.lipsync.LipsyncBackend`.
        source: the source video; ``analysis`` its faces, ``frame_times`` its frame times (s).
        source_audio: the source's speech, float32 mono at ``sample_rate_hz`` (the actor's own voice,
            for backends that learn from it), for requests without their own ``source_audio``.
        requests: the tracks to plan, in order; iterated once and not kept (an iterator may make
            them one at a time, so their whole-length audio is not all held at once).
        lossless: encode the video losslessly (x264 qp 0); else x264 ``preset`` at ``crf``.
        skip_unusable: a track the backend cannot plan (an :class:`InputError`: too few usable frames
            for the retrieval model in a 0.3 s or 1 fps clip) is left as decoded, with the reason in its
            details (``note``), instead of failing the run (the pipeline's choice; ``lipdub lipsync``
            of one face fails with the reason).
    Returns:
        A :class:`LipsyncRun`; ``video`` is None when no request had a frame to re-animate (the
        tracks' details then say why) and nothing was written.
    """
    run = LipsyncRun()
    for req in requests:
        frames = frames_to_animate(req.track, frame_times, req.spans_s, analysis.frame_count)
        key = str(req.track.id)
        if len(frames) == 0:
            run.tracks[key] = {"speaker": req.label, "frames": 0, "note": ALL_SKIPPED}
            continue
        own = req.source_audio if req.source_audio is not None else source_audio
        try:
            plan = backend.plan(analysis, req.track, frames, frame_times, own, req.dub_audio, sample_rate_hz, req.phonemes or None,
                                req.source_phonemes or None)
        except InputError as exc:
            if not skip_unusable:
                raise
            log.warning("track %s (%s) is not lip-synced, left as decoded: %s", key, req.label, exc.message)
            run.tracks[key] = {"speaker": req.label, "frames": 0, "note": f"{NOT_PLANNED}: {exc.message}"}
            continue
        run.plans.append((plan, req.track))
        run.tracks[key] = {"speaker": req.label, "frames": int(len(frames)), **_scalars(plan.details)}
    if not run.plans:
        return run
    run.render = render_lipsync(source, analysis, run.plans, output, lossless=lossless, crf=crf, preset=preset, progress=progress)
    for plan, track in run.plans:  # figures a backend adds while rendering (e.g. the external tool's run time)
        run.tracks[str(track.id)].update(_scalars(plan.details))
    run.video = output
    # display rotation as the clockwise MP4 'rotate' tag (PyAV reports it counter-clockwise)
    run.rotate_tag_deg = int(-analysis.rotation_deg) % 360
    return run
