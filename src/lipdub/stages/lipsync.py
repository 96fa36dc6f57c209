"""Stages 11 (lipsync) and 12 (composite): new mouth motion for each speaking face track.

A backend *plans* one track: for every frame to re-animate it provides a donor face (pixels and 478
landmarks in the donor image's coordinates). The shared compositor then aligns the donor's lower
face to the frame being replaced and blends it in. Frames outside the plan are left exactly as they
were.

* ``retrieval`` (DESIGN.md section 3): the donor of output frame i is a frame of the actor's own
  footage chosen by an audio-to-mouth model and a Viterbi search.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..registry import Registry
from .faces import FaceAnalysis, FaceTrack


@dataclass
class LipsyncPlan:
    """What a backend decided for one track.

    Attributes:
        track_id: the face track.
        frames: int64 ``(N,)`` output frame indices to re-animate (sorted, inside the track).
        source_frames: int64 ``(N,)`` for retrieval backends: the track frame whose lower face is
            shown at ``frames[i]``; None for generative backends.
        target_mouth: float32 ``(N, D)`` the planned mouth parameters (backend-specific), or None.
        details: figures for the stage record (e.g. the audio-to-mouth model's held-out R^2).
    """

    track_id: int
    frames: np.ndarray
    source_frames: np.ndarray | None = None
    target_mouth: np.ndarray | None = None
    details: dict = field(default_factory=dict)


class LipsyncBackend(Protocol):
    name: str

    def plan(
        self,
        analysis: FaceAnalysis,
        track: FaceTrack,
        frames: np.ndarray,
        frame_times_s: np.ndarray,
        source_audio: np.ndarray,
        dub_audio: np.ndarray,
        sample_rate_hz: int,
        phonemes: list[tuple[float, float, str]] | None = None,
    ) -> LipsyncPlan:
        """Plan the re-animation of ``track`` on output ``frames``.

        Args:
            analysis: the face analysis of the source video.
            track: the track to re-animate.
            frames: int64 ``(N,)`` output frames covered by the dubbed speech of this track's speaker.
            frame_times_s: float64 ``(frame_count,)`` presentation time of every frame.
            source_audio: float32 mono, the source dialogue (what the actor said in the footage).
            dub_audio: float32 mono, the dubbed dialogue of this speaker on the output timeline.
            sample_rate_hz: rate of both audios (16000 in the pipeline).
            phonemes: ``(start_s, end_s, phoneme)`` on the output timeline when the TTS gave them.
        """
        ...


LIPSYNC_BACKENDS: Registry[LipsyncBackend] = Registry("lipsync")
LIPSYNC_BACKENDS.register("retrieval", "lipdub.lipsync.retrieval:RetrievalBackend", "audio-driven mouth retrieval from the actor's own footage (no weights)")
