"""Stages 11 (lipsync) and 12 (composite): new mouth motion for each speaking face track.

A backend *plans* one track: for every frame to re-animate it provides a donor face (pixels and 478
landmarks in the donor image's coordinates). The shared compositor then aligns the donor's lower
face to the frame being replaced and blends it in. Frames outside the plan are left exactly as they
were.

* ``retrieval`` (DESIGN.md section 3): the donor of output frame i is a frame of the actor's own
  footage chosen by unit selection against the actor's viseme targets for the dub's phonemes (an
  acoustic audio-to-mouth model when there are none).
* ``wav2lip`` / ``wav2lip_gan``: the donor is the Wav2Lip generator's 96x96 face for that frame
  (official checkpoints), made while the video is decoded (:class:`DonorSource`).
* ``external``: the donor is a frame of the output of the user's own LatentSync / MuseTalk / Wav2Lip
  checkout, run by a command template on a crop around the track.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from ..registry import Registry
from .faces import FaceAnalysis, FaceTrack
from .synthesize import PhonemeTiming


@dataclass
class Donor:
    """A donor face: ``rgb`` crop (h, w, 3) uint8 and ``landmarks`` (478, 3) in crop pixels.

    ``offset`` (x, y) is where the crop sits in its source frame when the donor is a frame of the same
    video (retrieval): the compositor then gets a full frame (the crop pasted over the target) so
    neck and background map one to one; None for generated face crops.
    """

    rgb: np.ndarray
    landmarks: np.ndarray
    offset: tuple[int, int] | None = None

    def as_frame(self, target_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Full-frame donor image and landmarks (crop pasted over a copy of ``target_rgb``)."""
        if self.offset is None:
            return self.rgb, self.landmarks
        x0, y0 = self.offset
        frame = target_rgb.copy()
        h, w = self.rgb.shape[:2]
        frame[y0:y0 + h, x0:x0 + w] = self.rgb
        lm = self.landmarks.copy()
        lm[:, 0] += x0
        lm[:, 1] += y0
        return frame, lm


class DonorSource(Protocol):
    """Donor faces that a generative backend makes from the video itself, frame by frame.

    :func:`lipdub.lipsync.render.render_lipsync` calls, in this order: :meth:`open` with the source
    video; :meth:`observe` for every frame of :meth:`frames_to_observe` in increasing order during a
    first decoding pass (display-oriented RGB, e.g. to batch a generator); :meth:`finish`; then
    :meth:`donor` for every planned frame in increasing order during the second (compositing) pass;
    :meth:`close` always, last. Nothing is held for the whole video unless the source chooses to.
    """

    def open(self, source: Path) -> None:
        """Prepare for ``source`` (the video the plan's frames index)."""
        ...

    def frames_to_observe(self) -> np.ndarray:
        """int64 sorted frame indices :meth:`observe` must see (may be empty)."""
        ...

    def observe(self, frame: int, rgb: np.ndarray) -> None:
        """First pass: frame ``frame`` as uint8 ``(H, W, 3)`` RGB in display orientation."""
        ...

    def finish(self) -> None:
        """End of the first pass (flush pending batches)."""
        ...

    def donor(self, frame: int, rgb: np.ndarray) -> "Donor | None":
        """Second pass: the donor for planned frame ``frame`` (None: leave this frame untouched)."""
        ...

    def close(self) -> None:
        """Release files, models and decoders."""
        ...


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
        donors: for generative backends: the :class:`DonorSource` of the planned frames (exactly one
            of ``source_frames`` and ``donors`` is set when ``frames`` is not empty).
    """

    track_id: int
    frames: np.ndarray
    source_frames: np.ndarray | None = None
    target_mouth: np.ndarray | None = None
    details: dict = field(default_factory=dict)
    donors: DonorSource | None = None


class LipsyncBackend(Protocol):
    """A lip-sync backend.

    Attributes:
        name: the registry name.
        uses_phonemes: capability: True when ``plan`` uses the dub's and the source's phoneme timings
            (``retrieval``: they drive its viseme targets); False when it is driven by the dub's audio
            alone and ignores them (``wav2lip``, ``external``), so a caller need not align phonemes
            for it.
    """

    name: str
    uses_phonemes: bool

    def plan(
        self,
        analysis: FaceAnalysis,
        track: FaceTrack,
        frames: np.ndarray,
        frame_times_s: np.ndarray,
        source_audio: np.ndarray,
        dub_audio: np.ndarray,
        sample_rate_hz: int,
        phonemes: Sequence[PhonemeTiming] | Sequence[tuple[float, float, str]] | None = None,
        source_phonemes: Sequence[PhonemeTiming] | Sequence[tuple[float, float, str]] | None = None,
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
            phonemes: the dub's phonemes ``(start_s, end_s, phoneme)`` (or
                :class:`~lipdub.contracts.synthesize.PhonemeTiming`), seconds on the output timeline,
                espeak-ng IPA: from the TTS, or aligned (:mod:`lipdub.lipsync.align`).
            source_phonemes: the same for the source speech on the source timeline (transcript words +
                G2P + alignment): labels the actor's footage.
        """
        ...


LIPSYNC_BACKENDS: Registry[LipsyncBackend] = Registry("lipsync")
LIPSYNC_BACKENDS.register("retrieval", "lipdub.backends.lipsync.retrieval:RetrievalBackend", "phoneme-driven (viseme) mouth retrieval from the actor's own footage (no weights)")
LIPSYNC_BACKENDS.register("wav2lip", "lipdub.backends.lipsync.wav2lip:Wav2LipBackend", "Wav2Lip generator (wav2lip.pth checkpoint) through the shared compositor")
LIPSYNC_BACKENDS.register("wav2lip_gan", "lipdub.backends.lipsync.wav2lip:Wav2LipGANBackend", "Wav2Lip-GAN generator (wav2lip_gan.pth checkpoint) through the shared compositor")
LIPSYNC_BACKENDS.register("external", "lipdub.backends.lipsync.external:ExternalBackend", "your LatentSync / MuseTalk / Wav2Lip checkout run by a command template")
