"""The ``wav2lip`` and ``wav2lip_gan`` lip-sync backends: the Wav2Lip generator behind lipdub's own
face tracks and compositor.

Unlike Rudrabha/Wav2Lip's ``inference.py`` (one face, S3FD boxes, the 96x96 output resized and pasted
as a rectangle), lipdub:

* takes the face crop of every planned frame from the faces stage (478 smoothed landmarks of the
  track: their bounding box, then ``pads`` = (top, bottom, left, right) pixels as the reference's
  ``--pads``, the box averaged over 5 frames as the reference's ``--nosmooth`` off); only frames the
  faces stage did not flag (turned away, too small, occluded) and that the dub covers are planned;
* feeds the generator the crop resized to 96x96 (``cv2.INTER_AREA``) with rows 48-95 zeroed plus the
  same crop as the reference frame, in BGR like the reference, with the 16-frame mel window of
  :mod:`lipdub.backends.lipsync.wav2lip_audio`, in batches of ``batch_size`` during the first decoding pass
  of :func:`lipdub.lipsync.render.render_lipsync` (only the 96x96 outputs are kept: 27 KB a frame);
* resizes each generated face back to its crop (``cv2.INTER_CUBIC``), optionally sharpens it
  (unsharp mask), and hands it to the shared compositor as a *face-crop donor* whose landmarks are
  the target's own mapped into the crop (the generated face is aligned with the target, so the
  alignment is a translation): the compositor blends the lower face only, feathered, colour
  matched, and cuts its mask back where the crop ends. Several speaking faces are several plans.

Checkpoints (never downloaded): an explicit ``checkpoint`` path, else ``$LIPDUB_MODEL_DIR/<name>.pth``
or ``$LIPDUB_MODEL_DIR/wav2lip/<name>.pth`` (``$LIPDUB_MODEL_DIR`` defaults to
``~/.cache/lipdub/models``), where ``<name>`` is ``wav2lip`` or ``wav2lip_gan``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ...contracts.faces import FaceAnalysis, FaceTrack
from ...contracts.lipsync import Donor, LipsyncPlan
from ...errors import ConfigError, InputError, MissingWeights
from ...models import model_dir
from .wav2lip_audio import mel_window_starts, mel_windows, melspectrogram

log = logging.getLogger(__name__)

DEFAULT_PADS_PX = (0, 10, 0, 0)  # top, bottom, left, right: the reference inference script's default
BOX_SMOOTHING_FRAMES = 5  # the reference's box smoothing window (get_smoothened_boxes, T=5)
#: generator faces per second on this project's 2-core CPU (bench/wav2lip_fps.py, batch 16, float32,
#: 1.8-4.6 depending on the load of the shared machine; plan + 720p render: 1.9-3.4 frames/s); the
#: generator costs about 7.9 GFLOP per 96x96 face
EXPECTED_CPU_FPS = 4.0


def checkpoint_candidates(name: str) -> list[Path]:
    """Where a ``<name>.pth`` checkpoint is looked for when no explicit path is given, in order."""
    d = model_dir()
    return [d / f"{name}.pth", d / "wav2lip" / f"{name}.pth"]


def resolve_checkpoint(name: str, checkpoint: str | Path | None = None) -> Path:
    """The checkpoint file of backend ``name`` (``wav2lip`` or ``wav2lip_gan``).

    Raises:
        MissingWeights: the explicit path does not exist, or none of :func:`checkpoint_candidates` does.
    """
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise MissingWeights(f"{name} checkpoint {path} not found",
                                 f"pass the path of {name}.pth (Rudrabha/Wav2Lip release) to --checkpoint")
        return path
    for path in checkpoint_candidates(name):
        if path.is_file():
            return path
    where = " or ".join(str(p) for p in checkpoint_candidates(name))
    raise MissingWeights(f"no {name}.pth checkpoint (looked in {where})",
                         f"download {name}.pth from the Wav2Lip release into $LIPDUB_MODEL_DIR, or pass --checkpoint PATH")


def select_device(device: str = "auto") -> str:
    """A torch device string: ``auto`` is ``cuda`` when available, else ``mps``, else ``cpu``.

    Raises:
        ConfigError: an unknown device, or one this machine does not have.
    """
    import torch

    d = (device or "auto").strip().lower()
    has_mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if d == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if d == "cpu":
        return d
    if d == "mps":
        if not has_mps:
            raise ConfigError("device 'mps' is not available here", "use --device auto or cpu")
        return d
    if d == "cuda" or d.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} is not available here (no CUDA GPU visible to torch)", "use --device auto or cpu")
        if ":" in d:
            idx = d.split(":", 1)[1]
            if not idx.isdigit() or int(idx) >= torch.cuda.device_count():
                raise ConfigError(f"device {device!r} does not exist ({torch.cuda.device_count()} CUDA devices)", "use cuda:0 or --device auto")
        return d
    raise ConfigError(f"unknown device {device!r}", "use auto, cpu, cuda, cuda:N or mps")


def _check_pads(pads) -> tuple[int, int, int, int]:
    try:
        p = tuple(int(v) for v in pads)
    except (TypeError, ValueError):
        raise ConfigError(f"pads must be 4 integers (top bottom left right, pixels), got {pads!r}", "e.g. --pads 0 10 0 0") from None
    if len(p) != 4 or any(abs(v) > 10000 for v in p):
        raise ConfigError(f"pads must be 4 integers (top bottom left right, pixels), got {pads!r}", "e.g. --pads 0 10 0 0")
    return p  # type: ignore[return-value]


def face_boxes(track: FaceTrack, rows: np.ndarray, width: int, height: int,
               pads: tuple[int, int, int, int] = DEFAULT_PADS_PX) -> np.ndarray:
    """Generator crops of ``track`` at ``rows``: int64 ``(N, 4)`` x0, y0, x1, y1 (exclusive), pixels.

    The bounding box of the (smoothed) 478 landmarks, averaged over :data:`BOX_SMOOTHING_FRAMES`
    consecutive track frames (as the reference smooths its detector boxes), grown by ``pads`` =
    (top, bottom, left, right) pixels, clipped to the ``width`` x ``height`` frame.

    Raises:
        InputError: a box is empty after clipping (the face lies outside the frame).
    """
    from scipy.ndimage import uniform_filter1d

    lm = track.landmarks[:, :, :2]
    raw = np.concatenate([lm.min(1), lm.max(1)], axis=1).astype(np.float64)  # (T, 4)
    smooth = uniform_filter1d(raw, size=min(BOX_SMOOTHING_FRAMES, len(raw)), axis=0, mode="nearest")[rows]
    top, bottom, left, right = pads
    x0 = np.clip(np.floor(smooth[:, 0] - left), 0, width - 1)
    y0 = np.clip(np.floor(smooth[:, 1] - top), 0, height - 1)
    x1 = np.clip(np.ceil(smooth[:, 2] + right) + 1, 1, width)
    y1 = np.clip(np.ceil(smooth[:, 3] + bottom) + 1, 1, height)
    boxes = np.stack([x0, y0, x1, y1], 1).astype(np.int64)
    bad = (boxes[:, 2] - boxes[:, 0] < 8) | (boxes[:, 3] - boxes[:, 1] < 8)
    if bad.any():
        raise InputError(f"face track {track.id}: the face crop at frame {int(track.frames[rows[bad][0]])} is empty or under 8 px",
                         "check the pads (negative pads shrink the crop)")
    return boxes


def unsharp(rgb: np.ndarray, amount: float, sigma_px: float) -> np.ndarray:
    """Unsharp mask: ``rgb + amount * (rgb - GaussianBlur(rgb, sigma_px))``, uint8 in and out."""
    import cv2

    if amount <= 0:
        return rgb
    f = rgb.astype(np.float32)
    blur = cv2.GaussianBlur(f, (0, 0), sigma_px)
    return np.clip(np.rint(f + amount * (f - blur)), 0, 255).astype(np.uint8)


class Wav2LipBackend:
    """Lip-sync backend ``wav2lip``: the Wav2Lip generator (``wav2lip.pth``).

    Args:
        checkpoint: the ``.pth`` file; None: looked for in :func:`checkpoint_candidates`.
        device: ``auto`` (cuda, then mps, then cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        pads: (top, bottom, left, right) pixels added to the landmark box of the face crop.
        batch_size: faces per generator call (1-1024).
        sharpen: unsharp-mask amount for the upscaled generated face (0 = off; 0.5-1.0 counters
            the blur of a 96x96 face enlarged several times); sigma is 0.6 generator pixels.
        half: float16 inference; None: on when the device is a CUDA GPU. Refused on the CPU.

    Raises:
        MissingWeights / InputError: the checkpoint is missing or does not match the generator.
        ConfigError: a bad device, pads, batch size, sharpen amount or ``half`` on the CPU.
    """

    name = "wav2lip"
    uses_phonemes = False  # driven by the dub's mel spectrogram alone
    checkpoint_name = "wav2lip"

    def __init__(self, checkpoint: str | Path | None = None, device: str = "auto",
                 pads=DEFAULT_PADS_PX, batch_size: int = 16, sharpen: float = 0.0, half: bool | None = None) -> None:
        import torch

        from .wav2lip_model import build_model

        if not 1 <= int(batch_size) <= 1024:
            raise ConfigError(f"batch size must be 1-1024, got {batch_size}", "e.g. --batch-size 16 (CPU) or 128 (GPU)")
        if not 0.0 <= float(sharpen) <= 5.0:
            raise ConfigError(f"sharpen must be in [0, 5], got {sharpen}", "0 disables it; 0.5-1.0 is typical")
        self.pads = _check_pads(pads)
        self.batch_size = int(batch_size)
        self.sharpen = float(sharpen)
        self.device = select_device(device)
        if half is None:
            half = self.device.startswith("cuda")
        if half and self.device == "cpu":
            raise ConfigError("half precision is not supported on the CPU", "leave half unset or use a GPU device")
        self.half = bool(half)
        self.checkpoint = resolve_checkpoint(self.checkpoint_name, checkpoint)
        model = build_model(self.checkpoint).to(self.device)
        self.model = model.half() if self.half else model
        self._torch = torch

    @classmethod
    def check(cls) -> str:
        """For ``lipdub doctor``: the checkpoint found, the device, the expected speed.

        Raises:
            MissingWeights: no checkpoint in the default locations (the message names them).
        """
        device = select_device("auto")
        speed = "GPU: hundreds of frames/s" if device != "cpu" else f"~{EXPECTED_CPU_FPS:.0f} frames/s on 2 CPU cores"
        try:
            path = resolve_checkpoint(cls.checkpoint_name)
        except MissingWeights:
            raise MissingWeights(f"device {device}, {speed}; no {cls.checkpoint_name}.pth in {model_dir()} or its wav2lip/",
                                 "put it there or pass --checkpoint") from None
        return f"device {device}, {speed}; checkpoint {path}"

    def plan(self, analysis: FaceAnalysis, track: FaceTrack, frames: np.ndarray, frame_times_s: np.ndarray,
             source_audio: np.ndarray, dub_audio: np.ndarray, sample_rate_hz: int,
             phonemes=None, source_phonemes=None) -> LipsyncPlan:
        """Plan ``frames`` of ``track``: the mel windows of ``dub_audio`` and the face crops.

        ``source_audio``, ``phonemes`` and ``source_phonemes`` are not used (``uses_phonemes = False``):
        Wav2Lip is driven by the dub's mel spectrogram alone. The generator runs later, during the render's first pass.

        Raises:
            InputError: a frame outside the track, audio not at 16 kHz or empty.
        """
        f = np.asarray(frames, np.int64)
        rows = f - track.start_frame
        if len(f) and (rows.min() < 0 or rows.max() >= len(track.frames)):
            raise InputError(f"frames outside face track {track.id}", "plan only frames the track covers")
        if len(f) == 0:
            return LipsyncPlan(track.id, f, None, None, {"backend": self.name}, donors=None)
        mel = melspectrogram(np.asarray(dub_audio, np.float32), sample_rate_hz)
        starts = mel_window_starts(np.asarray(frame_times_s, np.float64)[f])
        boxes = face_boxes(track, rows, analysis.width, analysis.height, self.pads)  # displayed size
        source = Wav2LipDonors(self, track, f, boxes, mel, starts)
        details = {"backend": self.name, "checkpoint": str(self.checkpoint), "device": self.device,
                   "half": int(self.half), "batch_size": self.batch_size, "sharpen": self.sharpen,
                   "pads": " ".join(str(v) for v in self.pads)}
        return LipsyncPlan(track.id, f, None, None, details, donors=source)

    def generate(self, faces_rgb: np.ndarray, mel_windows: np.ndarray) -> np.ndarray:
        """Run the generator on one batch.

        Args:
            faces_rgb: uint8 ``(B, 96, 96, 3)`` RGB face crops (the reference frames).
            mel_windows: float32 ``(B, 1, 80, 16)``.

        Returns:
            uint8 ``(B, 96, 96, 3)`` RGB generated faces.
        """
        torch = self._torch
        bgr = faces_rgb[..., ::-1]
        masked = bgr.copy()
        masked[:, 96 // 2:] = 0
        x = np.concatenate([masked, bgr], axis=3).transpose(0, 3, 1, 2)  # (B, 6, 96, 96)
        dtype = torch.float16 if self.half else torch.float32
        with torch.inference_mode():
            face = torch.from_numpy(np.ascontiguousarray(x)).to(self.device).to(dtype) / 255.0
            audio = torch.from_numpy(np.ascontiguousarray(mel_windows)).to(self.device).to(dtype)
            out = self.model(audio, face).float().clamp_(0, 1).mul_(255.0).round_()
        out = out.to("cpu", torch.uint8).numpy().transpose(0, 2, 3, 1)  # (B, 96, 96, 3) BGR
        return np.ascontiguousarray(out[..., ::-1])


class Wav2LipGANBackend(Wav2LipBackend):
    """Lip-sync backend ``wav2lip_gan``: the same generator trained with a visual-quality discriminator
    (``wav2lip_gan.pth``); sharper, slightly weaker sync. Same arguments as :class:`Wav2LipBackend`."""

    name = "wav2lip_gan"
    checkpoint_name = "wav2lip_gan"


class Wav2LipDonors:
    """:class:`lipdub.contracts.lipsync.DonorSource` of one Wav2Lip plan (one track).

    First pass: the crops of the planned frames, batched through the generator; only the 96x96
    outputs are kept (uint8 ``(N, 96, 96, 3)``). Second pass: each output resized to its crop,
    sharpened when asked, with the target's landmarks shifted into the crop.
    """

    def __init__(self, backend: Wav2LipBackend, track: FaceTrack, frames: np.ndarray, boxes: np.ndarray,
                 mel: np.ndarray, starts: np.ndarray) -> None:
        self.backend = backend
        self.track = track
        self.frames = frames
        self.boxes = boxes
        self.mel = mel
        self.starts = starts
        self._row = {int(f): k for k, f in enumerate(frames)}
        self._generated: np.ndarray | None = None
        self._pending: list[tuple[int, np.ndarray]] = []

    def open(self, source: Path) -> None:
        self._generated = np.zeros((len(self.frames), 96, 96, 3), np.uint8)
        self._done = np.zeros(len(self.frames), bool)
        self._pending = []

    def frames_to_observe(self) -> np.ndarray:
        return self.frames

    def observe(self, frame: int, rgb: np.ndarray) -> None:
        import cv2

        k = self._row[int(frame)]
        x0, y0, x1, y1 = (int(v) for v in self.boxes[k])
        crop = cv2.resize(rgb[y0:y1, x0:x1], (96, 96), interpolation=cv2.INTER_AREA)
        self._pending.append((k, crop))
        if len(self._pending) >= self.backend.batch_size:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        ks = np.array([k for k, _ in self._pending], np.int64)
        faces = np.stack([c for _, c in self._pending])
        self._generated[ks] = self.backend.generate(faces, mel_windows(self.mel, self.starts[ks]))
        self._done[ks] = True
        self._pending = []

    def finish(self) -> None:
        self._flush()

    def donor(self, frame: int, rgb: np.ndarray):
        import cv2

        k = self._row.get(int(frame))
        if k is None or self._generated is None or not self._done[k]:
            return None
        x0, y0, x1, y1 = (int(v) for v in self.boxes[k])
        w, h = x1 - x0, y1 - y0
        face = cv2.resize(self._generated[k], (w, h), interpolation=cv2.INTER_CUBIC)
        if self.backend.sharpen > 0:
            face = unsharp(face, self.backend.sharpen, 0.6 * max(w, h) / 96.0)
        lm = self.track.landmarks[self.track.index_of(int(frame))].astype(np.float64).copy()
        lm[:, 0] -= x0
        lm[:, 1] -= y0
        return Donor(face, lm, None)

    def close(self) -> None:
        self._generated = None
        self._pending = []
