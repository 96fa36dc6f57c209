"""SyncNet LSE-D / LSE-C / AV offset, computed as joonson/syncnet_python does (DESIGN.md section 4).

SyncNet (Chung & Zisserman, "Out of time: automated lip sync in the wild", ACCV 2016 workshops) embeds
5 video frames of a face (224x224, BGR, 0-255, 25 fps) and 20 MFCC frames (13 coefficients at 100 Hz,
i.e. the same 0.2 s) into a shared 1024-d space. The evaluation protocol of syncnet_python
(``SyncNetInstance.evaluate``), used by Wav2Lip (Prajwal et al. 2020) to define LSE-D and LSE-C:

1. one video embedding per 5-frame window starting at every frame ``i < min_length - 5``, with
   ``min_length = min(frames, floor(samples / 640))``; the audio window of frame ``i`` is MFCC
   columns ``4i .. 4i + 20``;
2. for every shift ``s`` in ``-vshift..+vshift`` (15), the Euclidean distance between video window
   ``i`` and audio window ``i + s`` (audio features zero-padded at both ends), averaged over ``i``;
3. LSE-D = the minimum of those mean distances; AV offset = ``vshift - argmin`` frames;
   LSE-C = median over shifts minus the minimum.

The network here is written to load the published ``syncnet_v2.model`` state_dict: exactly the keys and
shapes listed in ``../shared/specs/syncnet_v2_state_dict.txt`` (102 tensors). Face crops follow
syncnet_python's ``run_pipeline.crop_video``: a square box around the tracked face (half-size
``max(w, h) / 2`` median-filtered over 13 frames), padded by 40 % (more below the face), resized to
224x224. Faces come from lipdub's own face tracks (MediaPipe) rather than S3FD.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailable, InputError, MissingWeights
from ..models import state_dict_mismatch
from .visual import iter_selected_frames

SYNCNET_FPS = 25
SYNCNET_RATE_HZ = 16000
CROP_PX = 224
WINDOW_FRAMES = 5
MFCC_PER_FRAME = 4  # 100 Hz MFCC / 25 fps
MFCC_WINDOW = 20
DEFAULT_VSHIFT = 15
EMBEDDING_DIM = 1024
CROP_SCALE = 0.4  # syncnet_python run_pipeline --crop_scale default
PAD_VALUE = 110  # grey used by run_pipeline to pad frames around the crop


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is part of the audio extra
        raise BackendUnavailable("SyncNet needs torch", "pip install 'lipdub[audio]' (torch==2.13.0 CPU)") from exc
    return torch


def build_syncnet():
    """The SyncNet v2 network (``torch.nn.Module``) with the layer layout of syncnet_v2.model.

    Methods of the returned module:
        ``forward_audio(x)``: float32 ``(N, 1, 13, 20)`` MFCC windows -> ``(N, 1024)``;
        ``forward_video(x)``: float32 ``(N, 3, 5, 224, 224)`` BGR 0-255 face windows -> ``(N, 1024)``.
    The module is returned in eval mode (batch norm uses the stored running statistics).
    """
    torch = _torch()
    nn = torch.nn

    def bn_relu2(c):
        return [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]

    def bn_relu3(c):
        return [nn.BatchNorm3d(c), nn.ReLU(inplace=True)]

    class SyncNetV2(nn.Module):
        """Audio and lip streams of SyncNet; sub-module indices match the published state_dict keys."""

        def __init__(self) -> None:
            super().__init__()
            self.netcnnaud = nn.Sequential(
                nn.Conv2d(1, 64, 3, padding=1), *bn_relu2(64), nn.MaxPool2d(1, 1),            # 0-3
                nn.Conv2d(64, 192, 3, padding=1), *bn_relu2(192), nn.MaxPool2d(3, (1, 2)),     # 4-7
                nn.Conv2d(192, 384, 3, padding=1), *bn_relu2(384),                              # 8-10
                nn.Conv2d(384, 256, 3, padding=1), *bn_relu2(256),                              # 11-13
                nn.Conv2d(256, 256, 3, padding=1), *bn_relu2(256), nn.MaxPool2d(3, 2),          # 14-17
                nn.Conv2d(256, 512, (5, 4)), *bn_relu2(512),                                    # 18-20
            )
            self.netfcaud = nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, EMBEDDING_DIM))
            self.netfclip = nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, EMBEDDING_DIM))
            self.netcnnlip = nn.Sequential(
                nn.Conv3d(3, 96, (5, 7, 7), stride=(1, 2, 2)), *bn_relu3(96),
                nn.MaxPool3d((1, 3, 3), (1, 2, 2)),                                              # 0-3
                nn.Conv3d(96, 256, (1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)), *bn_relu3(256),
                nn.MaxPool3d((1, 3, 3), (1, 2, 2), padding=(0, 1, 1)),                           # 4-7
                nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), *bn_relu3(256),              # 8-10
                nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), *bn_relu3(256),              # 11-13
                nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), *bn_relu3(256),
                nn.MaxPool3d((1, 3, 3), (1, 2, 2)),                                              # 14-17
                nn.Conv3d(256, 512, (1, 6, 6)), *bn_relu3(512),                                 # 18-20
            )

        def forward_audio(self, x):
            return self.netfcaud(self.netcnnaud(x).flatten(1))

        def forward_video(self, x):
            return self.netfclip(self.netcnnlip(x).flatten(1))

    return SyncNetV2().eval()


def load_syncnet(path: str | Path):
    """Load ``syncnet_v2.model`` (a state_dict saved by ``torch.save``) into :func:`build_syncnet`.

    Raises:
        MissingWeights: the file does not exist.
        InputError: it is not a torch state_dict, or its keys / shapes differ from SyncNet v2's
            (the message names the first difference).
    """
    torch = _torch()
    path = Path(path)
    if not path.is_file():
        raise MissingWeights(f"SyncNet weights {path} not found",
                             "pass --syncnet PATH to syncnet_v2.model (joonson/syncnet_python download_model.sh)")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"{path} is not a PyTorch state_dict ({type(exc).__name__})", "pass the syncnet_v2.model file") from None
    if not isinstance(state, dict):
        raise InputError(f"{path} holds a {type(state).__name__}, not a state_dict", "pass the syncnet_v2.model file")
    model = build_syncnet()
    mismatch = state_dict_mismatch(state, model.state_dict())
    if mismatch:
        raise InputError(f"{path} is not a SyncNet v2 state_dict: {mismatch}",
                         "pass the syncnet_v2.model of joonson/syncnet_python")
    model.load_state_dict(state, strict=True)
    return model.eval()


def mfcc_100hz(audio: np.ndarray, sample_rate_hz: int = SYNCNET_RATE_HZ) -> np.ndarray:
    """MFCC as syncnet_python computes them: ``python_speech_features.mfcc`` with its defaults (25 ms
    windows, 10 ms hop, 13 coefficients, 26 filters, log energy as c0) on 16-bit PCM values.

    Args:
        audio: mono float in [-1, 1] (converted to int16 like ffmpeg's pcm_s16le) or int16.
    Returns:
        float64 ``(13, n_hops)``.
    """
    try:
        import python_speech_features
    except ImportError as exc:
        raise BackendUnavailable("SyncNet scoring needs python_speech_features", "pip install python_speech_features") from exc
    a = np.asarray(audio)
    if a.dtype != np.int16:
        a = np.clip(np.round(a.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)
    return np.asarray(python_speech_features.mfcc(a, sample_rate_hz)).T


def calc_pdist(video_feats, audio_feats, vshift: int = DEFAULT_VSHIFT):
    """Distances between video window ``i`` and audio windows ``i - vshift .. i + vshift``.

    Args:
        video_feats, audio_feats: float tensors ``(n, D)`` (audio zero-padded by ``vshift`` at each end).
    Returns:
        float tensor ``(n, 2 * vshift + 1)`` of ``torch.nn.functional.pairwise_distance`` values.
    """
    torch = _torch()
    win = 2 * vshift + 1
    padded = torch.nn.functional.pad(audio_feats, (0, 0, vshift, vshift))
    rows = [torch.nn.functional.pairwise_distance(video_feats[[i], :].repeat(win, 1), padded[i:i + win, :])
            for i in range(len(video_feats))]
    return torch.stack(rows, 0)


@dataclass
class LSEScore:
    """SyncNet figures of one face track.

    Attributes:
        offset_frames: AV offset at 25 fps (syncnet_python's sign: ``vshift - argmin``).
        lse_d: minimum over shifts of the mean embedding distance (lower is better).
        lse_c: median minus minimum of the mean distances (higher is better).
        mean_distance_by_shift: mean distance at each shift ``-vshift..+vshift`` (index ``j`` is shift
            ``j - vshift``).
        n_windows: number of 5-frame windows scored.
    """

    offset_frames: int
    lse_d: float
    lse_c: float
    mean_distance_by_shift: list[float] = field(default_factory=list)
    n_windows: int = 0
    track: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def lse_from_distances(dists, vshift: int = DEFAULT_VSHIFT) -> LSEScore:
    """LSE-D, LSE-C and offset from :func:`calc_pdist`'s ``(n, 2 * vshift + 1)`` distances."""
    torch = _torch()
    d = torch.as_tensor(dists)
    mdist = d.mean(0)
    minval, minidx = torch.min(mdist, 0)
    conf = torch.median(mdist) - minval
    return LSEScore(offset_frames=int(vshift - int(minidx)), lse_d=float(minval), lse_c=float(conf),
                    mean_distance_by_shift=[float(x) for x in mdist], n_windows=int(d.shape[0]))


def syncnet_score(model, crops_bgr: np.ndarray, audio: np.ndarray, *, vshift: int = DEFAULT_VSHIFT, batch_size: int = 20,
                  track: int | None = None) -> LSEScore:
    """Score face crops against audio with a SyncNet from :func:`build_syncnet` / :func:`load_syncnet`.

    Args:
        crops_bgr: uint8 ``(T, 224, 224, 3)`` BGR face crops at 25 fps.
        audio: mono float ``(n,)`` at 16 kHz covering the same time span.
    Raises:
        InputError: fewer than 6 frames (no 5-frame window) or crops not 224x224x3.
    """
    torch = _torch()
    crops = np.asarray(crops_bgr)
    if crops.ndim != 4 or crops.shape[1:] != (CROP_PX, CROP_PX, 3):
        raise InputError(f"SyncNet crops must be (T, 224, 224, 3), got {crops.shape}", "crop faces with face_crops_25fps")
    mfcc = torch.from_numpy(mfcc_100hz(audio)).float()[None, None]  # (1, 1, 13, M)
    min_length = min(len(crops), math.floor(len(audio) / (SYNCNET_RATE_HZ // SYNCNET_FPS)))
    last = min_length - WINDOW_FRAMES
    if last <= 0:
        raise InputError(f"{min_length} frames are too few for SyncNet", "score at least 6 frames (0.24 s) of a face")
    video = torch.from_numpy(crops).float().permute(3, 0, 1, 2)[None]  # (1, 3, T, H, W)
    im_feat, cc_feat = [], []
    with torch.inference_mode():
        for i in range(0, last, batch_size):
            idx = range(i, min(last, i + batch_size))
            im_feat.append(model.forward_video(torch.cat([video[:, :, v:v + WINDOW_FRAMES] for v in idx], 0)))
            cc_feat.append(model.forward_audio(torch.cat([mfcc[:, :, :, v * MFCC_PER_FRAME:v * MFCC_PER_FRAME + MFCC_WINDOW] for v in idx], 0)))
    score = lse_from_distances(calc_pdist(torch.cat(im_feat), torch.cat(cc_feat), vshift), vshift)
    score.track = track
    return score


def _medfilt(x: np.ndarray, k: int = 13) -> np.ndarray:
    from scipy.signal import medfilt

    return medfilt(x, kernel_size=k) if len(x) >= k else x


def face_crops_25fps(video: str | Path, track, frame_times_s: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Crops of one face track resampled to 25 fps, as syncnet_python's ``crop_video``.

    Each 25 fps instant takes the latest source frame shown at that time. The crop centre and
    half-size (``max(w, h) / 2`` of the track box) are median filtered over 13 frames; the frame is
    padded with grey 110 and cropped to rows ``y - s .. y + s(1 + 2 * 0.4)`` and columns
    ``x - s(1 + 0.4) .. x + s(1 + 0.4)``, then resized to 224x224 (OpenCV, bilinear).

    Args:
        track: a :class:`~lipdub.contracts.faces.FaceTrack` of ``video``.
        frame_times_s: float ``(n_frames,)`` presentation times of ``video``'s frames.
    Returns:
        ``(crops, start_s, end_s)``: uint8 ``(T, 224, 224, 3)`` BGR and the time span they cover.
    """
    import cv2

    t = np.asarray(frame_times_s, dtype=np.float64)
    start_s = float(t[track.start_frame])
    end_s = float(t[track.end_frame]) if track.end_frame < len(t) else float(t[-1] + (np.median(np.diff(t)) if len(t) > 1 else 0.04))
    ticks = start_s + np.arange(int(math.floor((end_s - start_s) * SYNCNET_FPS + 1e-6))) / SYNCNET_FPS
    src = np.clip(np.searchsorted(t, ticks + 1e-6, side="right") - 1, track.start_frame, track.end_frame - 1)
    b = np.asarray(track.boxes, dtype=np.float64)
    s = _medfilt(np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) / 2)
    cx = _medfilt((b[:, 0] + b[:, 2]) / 2)
    cy = _medfilt((b[:, 1] + b[:, 3]) / 2)
    wanted: dict[int, list[int]] = {}
    for k, f in enumerate(src):
        wanted.setdefault(int(f), []).append(k)
    crops = np.zeros((len(ticks), CROP_PX, CROP_PX, 3), dtype=np.uint8)
    for idx, rgb in iter_selected_frames(video, set(wanted)):
        r = idx - track.start_frame
        bs = float(s[r])
        bsi = int(bs * (1 + 2 * CROP_SCALE))
        frame = np.pad(rgb[:, :, ::-1], ((bsi, bsi), (bsi, bsi), (0, 0)), constant_values=PAD_VALUE)
        my, mx = cy[r] + bsi, cx[r] + bsi
        face = frame[int(my - bs):int(my + bs * (1 + 2 * CROP_SCALE)), int(mx - bs * (1 + CROP_SCALE)):int(mx + bs * (1 + CROP_SCALE))]
        crop = cv2.resize(face, (CROP_PX, CROP_PX))
        for k in wanted[idx]:
            crops[k] = crop
    return crops, start_s, start_s + len(ticks) / SYNCNET_FPS


def video_syncnet_score(model, video: str | Path, analysis, frame_times_s: np.ndarray, audio_16k: np.ndarray,
                        track_id: int | None = None, vshift: int = DEFAULT_VSHIFT) -> LSEScore | None:
    """SyncNet score of one face track of ``video`` (default: the longest) against ``audio_16k``
    (mono float at 16 kHz from the start of the video); None when the video has no face track."""
    if not analysis.tracks:
        return None
    track = (next((t for t in analysis.tracks if t.id == track_id), None) if track_id is not None
             else max(analysis.tracks, key=lambda t: len(t.frames)))
    if track is None:
        return None
    crops, start_s, end_s = face_crops_25fps(video, track, frame_times_s)
    a = int(round(start_s * SYNCNET_RATE_HZ))
    audio = np.asarray(audio_16k, dtype=np.float32)[a:int(round(end_s * SYNCNET_RATE_HZ))]
    return syncnet_score(model, crops, audio, vshift=vshift, track=track.id)
