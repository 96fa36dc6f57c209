"""Features of the ``retrieval`` lip-sync backend (DESIGN.md section 3, steps 1 and 2).

* **Mouth descriptor** (:func:`align_landmarks`, :class:`MouthPCA`): each frame's 478 MediaPipe
  landmarks are brought to a canonical face of the track by a 3D similarity transform (Umeyama,
  "Least-squares estimation of transformation parameters between two point patterns", IEEE PAMI 1991)
  fitted on points that do not move when a person speaks (eye corners, nose bridge and tip, forehead);
  the canonical face is the generalized-Procrustes mean of the track (Gower 1975) scaled so that the
  outer eye corners (33-263) are 1 apart. The lip (outer and inner contour) and lower jaw points,
  relative to that canonical frame, are then reduced by PCA to a few parameters: the first one is the
  mouth opening (its sign is fixed so that it grows with ``FaceTrack.mouth_opening``), the next ones
  width, rounding, jaw drop. PCA keeps Euclidean distances (an orthogonal projection), so a distance
  between descriptors is the distance between the aligned lip shapes, in inter-ocular units.
* **Audio features** (:func:`lipdub.spectral.log_mel`, :func:`audio_features_per_frame`): log-mel power (80 bands,
  25 ms Hann window, 10 ms hop, 16 kHz) stacked over +-100 ms around each video frame's presentation
  time (VFR-safe: taken at ``frame_times_s``, not at ``i / fps``), then normalized per utterance
  (each dimension to zero mean and unit variance over the utterance's speech frames; cepstral mean
  and variance normalization, Viikki and Laurila 1998) so that another voice or a TTS lands in the
  same space. The log floor is relative to the utterance's peak power, so a gain change only shifts
  the log-mel by a constant, which the normalization removes exactly. Speech/silence per frame from
  the frame's energy relative to the utterance's loud frames.

Everything here is numpy/scipy (no librosa or scikit-learn needed at run time).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d

from ...errors import InputError
from ...spectral import log_mel

log = logging.getLogger(__name__)

# MediaPipe Face Mesh landmark ids (canonical_face_model_uv_visualization.png in the mediapipe repo).
LM_EYE_OUTER_L, LM_EYE_OUTER_R = 33, 263  # image left / image right outer eye corners
STABLE_POINTS = np.array([
    33, 133, 362, 263,  # eye corners (outer, inner; inner, outer)
    168, 6, 197, 195, 5, 4, 1,  # nose bridge down to the tip
    10, 151, 9, 8,  # forehead / glabella on the midline
    234, 454,  # upper face contour at the temples (cheekbone level, above the jaw)
], dtype=np.int64)
LIPS_OUTER = np.array([61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185], dtype=np.int64)
LIPS_INNER = np.array([78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191], dtype=np.int64)
JAW = np.array([172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397], dtype=np.int64)  # chin / lower jaw line
LIP_POINTS = np.concatenate([LIPS_OUTER, LIPS_INNER])
MOUTH_POINTS = np.concatenate([LIP_POINTS, JAW])


# --------------------------------------------------------------------------------------------------
# Mouth descriptor
# --------------------------------------------------------------------------------------------------

def _umeyama_batch(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares similarity ``dst ~ s R src + t`` for a batch (Umeyama 1991).

    Args:
        src: float64 ``(T, P, D)`` point sets; dst: float64 ``(P, D)`` one target set.

    Returns:
        ``(s, R, t)``: float64 ``(T,)``, ``(T, D, D)`` proper rotations (det +1), ``(T, D)``.
    """
    mu_s = src.mean(axis=1)  # (T, D)
    mu_d = dst.mean(axis=0)  # (D,)
    xs = src - mu_s[:, None, :]
    xd = dst - mu_d
    var_s = (xs ** 2).sum(axis=(1, 2)) / src.shape[1]
    cov = np.einsum("pi,tpj->tij", xd, xs) / src.shape[1]  # (T, D, D) = E[d s^T]
    u, sig, vt = np.linalg.svd(cov)
    d = src.shape[2]
    sign = np.ones((len(src), d))
    sign[:, -1] = np.where(np.linalg.det(u) * np.linalg.det(vt) < 0, -1.0, 1.0)
    r = np.einsum("tij,tj,tjk->tik", u, sign, vt)
    s = (sig * sign).sum(axis=1) / np.maximum(var_s, 1e-12)
    t = mu_d[None, :] - s[:, None] * np.einsum("tij,tj->ti", r, mu_s)
    return s, r, t


def align_landmarks(landmarks_px: np.ndarray, usable: np.ndarray | None = None, iterations: int = 3) -> np.ndarray:
    """Landmarks of every frame in the track's canonical face frame (3D similarity on stable points).

    Args:
        landmarks_px: float ``(T, 478, 3)`` x, y, z in pixels (``FaceTrack.landmarks``, smoothed).
        usable: bool ``(T,)`` frames used to build the canonical face (default all).
        iterations: generalized-Procrustes iterations for the canonical face.

    Returns:
        float64 ``(T, 478, 3)`` in inter-ocular units: the canonical face has its outer eye corners
        (33, 263) 1 apart, centred on the stable points' centroid.

    Raises:
        InputError: fewer than 1 usable frame or landmarks of the wrong shape.
    """
    lm = np.asarray(landmarks_px, dtype=np.float64)
    if lm.ndim != 3 or lm.shape[1] <= int(MOUTH_POINTS.max()) or lm.shape[2] < 2:
        raise InputError(f"landmarks must be (T, 478, 3), got {lm.shape}", "pass FaceTrack.landmarks")
    use = np.ones(len(lm), bool) if usable is None else np.asarray(usable, bool)
    if not use.any():
        raise InputError("no usable frame to build the canonical face", "the track has no frame with skip == 0")
    stable = lm[:, STABLE_POINTS, :]

    def normalize(ref: np.ndarray) -> np.ndarray:
        ref = ref - ref.mean(axis=0)
        i_l, i_r = list(STABLE_POINTS).index(LM_EYE_OUTER_L), list(STABLE_POINTS).index(LM_EYE_OUTER_R)
        return ref / max(np.linalg.norm(ref[i_l] - ref[i_r]), 1e-9)

    ref = normalize(np.median(stable[use], axis=0))
    for _ in range(iterations):
        s, r, t = _umeyama_batch(stable[use], ref)
        aligned = s[:, None, None] * np.einsum("tij,tpj->tpi", r, stable[use]) + t[:, None, :]
        ref = normalize(aligned.mean(axis=0))
    s, r, t = _umeyama_batch(stable, ref)
    return s[:, None, None] * np.einsum("tij,tpj->tpi", r, lm) + t[:, None, :]


def mouth_shapes(aligned: np.ndarray, points: np.ndarray = MOUTH_POINTS, use_z: bool = False) -> np.ndarray:
    """Flattened mouth shape per frame: float64 ``(T, len(points) * (3 if use_z else 2))`` from
    :func:`align_landmarks` output (x, y in inter-ocular units; z left out by default because
    MediaPipe's depth of the lips is noisier than x, y)."""
    pts = aligned[:, points, :3 if use_z else 2]
    return pts.reshape(len(aligned), -1)


@dataclass
class MouthPCA:
    """PCA of mouth shapes fitted on one track (numpy SVD; Pearson 1901 / Hotelling 1933).

    Attributes:
        mean: float64 ``(F,)`` mean shape; components: float64 ``(D, F)`` orthonormal rows;
        explained_variance: float64 ``(D,)`` variance of each parameter (inter-ocular units squared);
        explained_ratio: float64 ``(D,)`` share of the total shape variance.
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    explained_ratio: np.ndarray

    @classmethod
    def fit(cls, shapes: np.ndarray, n_components: int = 6, opening: np.ndarray | None = None) -> "MouthPCA":
        """Fit on float ``(T, F)`` shapes (usable frames only); ``opening`` float ``(T,)`` (the track's
        ``mouth_opening`` on the same frames) fixes the sign of component 0 so that it grows with the
        opening (other components: largest loading positive). ``n_components`` is capped by T - 1.

        Raises:
            InputError: fewer than 3 frames.
        """
        x = np.asarray(shapes, np.float64)
        if len(x) < 3:
            raise InputError(f"{len(x)} usable frames are too few for a mouth model", "the face track needs at least 3 usable frames")
        mean = x.mean(axis=0)
        u, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        var = s ** 2 / max(len(x) - 1, 1)
        d = int(max(1, min(n_components, len(x) - 1, vt.shape[0])))
        comps = vt[:d].copy()
        for k in range(d):
            if k == 0 and opening is not None and np.std(opening) > 0:
                proj = (x - mean) @ comps[0]
                if np.corrcoef(proj, opening)[0, 1] < 0:
                    comps[0] *= -1
            elif comps[k][np.argmax(np.abs(comps[k]))] < 0:
                comps[k] *= -1
        return cls(mean=mean, components=comps, explained_variance=var[:d], explained_ratio=var[:d] / max(var.sum(), 1e-30))

    def transform(self, shapes: np.ndarray) -> np.ndarray:
        """float ``(T, F)`` shapes -> float32 ``(T, D)`` descriptors."""
        return ((np.asarray(shapes, np.float64) - self.mean) @ self.components.T).astype(np.float32)

    def inverse(self, desc: np.ndarray) -> np.ndarray:
        """float ``(T, D)`` descriptors -> float64 ``(T, F)`` shapes."""
        return np.asarray(desc, np.float64) @ self.components + self.mean


def mouth_descriptors(landmarks_px: np.ndarray, usable: np.ndarray, opening: np.ndarray | None = None,
                      n_components: int = 6) -> tuple[np.ndarray, MouthPCA, np.ndarray]:
    """Step 1 of DESIGN.md section 3 for one track.

    Args:
        landmarks_px: float ``(T, 478, 3)`` smoothed landmarks in pixels.
        usable: bool ``(T,)`` frames with ``skip == 0`` (canonical face and PCA fitted on them only).
        opening: float ``(T,)`` ``FaceTrack.mouth_opening`` (sign of component 0).
        n_components: PCA parameters kept.

    Returns:
        ``(desc, pca, aligned)``: float32 ``(T, D)`` descriptors of every frame (unusable ones too),
        the fitted :class:`MouthPCA`, float64 ``(T, 478, 3)`` aligned landmarks (inter-ocular units).
    """
    usable = np.asarray(usable, bool)
    aligned = align_landmarks(landmarks_px, usable)
    shapes = mouth_shapes(aligned)
    pca = MouthPCA.fit(shapes[usable], n_components, None if opening is None else np.asarray(opening)[usable])
    return pca.transform(shapes), pca, aligned


# --------------------------------------------------------------------------------------------------
# Audio features
# --------------------------------------------------------------------------------------------------

def _sample_rows(values: np.ndarray, times_s: np.ndarray, hop_s: float) -> np.ndarray:
    """Linear interpolation of the rows of ``values`` (frame m at ``m * hop_s``) at ``times_s``
    (clamped to the ends)."""
    pos = np.clip(np.asarray(times_s, np.float64) / hop_s, 0, len(values) - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, len(values) - 1)
    a = (pos - i0)[..., None]
    return (1 - a) * values[i0] + a * values[i1]


def speech_mask(energy_db: np.ndarray, relative_db: float = 30.0, floor_share: float = 0.35,
                min_spread_db: float = 15.0, absolute_floor_dbfs: float = -100.0) -> np.ndarray:
    """Speech (True) / silence (False) per frame from its level (dBFS).

    ``loud`` is the utterance's 95th percentile level and ``floor`` its 5th (the noise floor when the
    utterance has pauses). When ``loud - floor < min_spread_db`` the utterance has no pause (all
    speech). Otherwise the threshold is the higher of ``loud - relative_db`` (clean audio such as
    TTS, whose pauses are digital silence) and ``floor + floor_share * (loud - floor)`` (recordings
    whose pauses hold room noise only a few tens of dB below the voice). Levels at or below
    ``absolute_floor_dbfs`` (digital silence, dither) are always silence. Everything but that floor is relative, so the
    result does not depend on the gain.

    Args:
        energy_db: float ``(N,)`` dBFS.

    Returns:
        bool ``(N,)``.
    """
    e = np.asarray(energy_db, np.float64)
    if len(e) == 0:
        return np.zeros(0, bool)
    loud, floor = float(np.percentile(e, 95)), float(np.percentile(e, 5))
    if loud - floor < min_spread_db:
        return e > absolute_floor_dbfs
    thr = max(loud - relative_db, floor + floor_share * (loud - floor))
    return (e > thr) & (e > absolute_floor_dbfs)


@dataclass
class FrameAudio:
    """Audio features at a set of video frames.

    Attributes:
        features: float32 ``(N, F)`` stacked log-mel context, normalized per utterance.
        raw: float32 ``(N, F)`` the same before normalization (dB).
        energy_db: float32 ``(N,)`` level around each frame (dBFS, mean over +-``context_s`` / 2).
        speech: bool ``(N,)`` the frame is inside speech (see :func:`speech_mask`).
    """

    features: np.ndarray
    raw: np.ndarray
    energy_db: np.ndarray
    speech: np.ndarray


def audio_features_per_frame(
    audio: np.ndarray,
    sample_rate_hz: int,
    frame_times_s: np.ndarray,
    *,
    context_s: float = 0.100,
    step_s: float = 0.020,
    n_mels: int = 80,
    band_groups: int = 8,
    normalize: bool = True,
    clip: float = 4.0,
) -> FrameAudio:
    """Step 2 of DESIGN.md section 3: log-mel context of each video frame, per-utterance normalized.

    At each frame time t, the log-mel (80 bands, 25 ms window, 10 ms hop) is sampled at
    ``t + k * step_s`` for ``|k * step_s| <= context_s`` (11 taps over +-100 ms by default), each tap the
    mean of the 10 ms frames within +-``step_s``/2; adjacent mel bands are averaged into ``band_groups``
    groups, and the frame level (dB) at each tap is appended: a clip gives only a few hundred
    training frames, and on the test clips (blocked cross-validation) 8 coarse bands predict the mouth
    better than 40 or 80 fine ones, which the regression over-fits. The utterance is the set of frames
    passed: normalization statistics (mean, standard deviation per dimension) come from its speech
    frames (all frames when fewer than 5 are speech); normalized values are clipped to +-``clip``
    standard deviations so that digital silence (a TTS pause) does not become an extreme input.

    Args:
        audio: float mono; sample_rate_hz: its rate.
        frame_times_s: float64 ``(N,)`` presentation times of the frames (VFR-safe).

    Returns:
        :class:`FrameAudio` with ``F = n_taps * (band_groups + 1)``.
    """
    t = np.asarray(frame_times_s, np.float64)
    lm = log_mel(audio, sample_rate_hz, n_mels=n_mels)
    groups = max(1, min(band_groups, n_mels))
    edges = np.linspace(0, n_mels, groups + 1).round().astype(int)
    db = np.stack([lm.db[:, a:b].mean(axis=1) for a, b in zip(edges[:-1], edges[1:])], axis=1).astype(np.float64)
    # box-smooth over one tap (step_s) so each tap averages its 10 ms frames
    w = max(1, int(round(step_s / lm.hop_s)))
    if w > 1:
        db = uniform_filter1d(db, w, axis=0, mode="nearest")
    n_side = int(round(context_s / step_s))
    offsets = np.arange(-n_side, n_side + 1) * step_s
    # level per 10 ms frame (dB, relative floor like the mel bands), smoothed like the bands
    e_lin = lm.power
    lvl = 10 * np.log10(uniform_filter1d(e_lin, w, mode="nearest") + 1e-8 * max(float(e_lin.max()), 1e-30))
    taps = _sample_rows(np.concatenate([db, lvl[:, None]], axis=1), t[:, None] + offsets[None, :], lm.hop_s)
    raw = taps.reshape(len(t), -1)  # (N, taps * (groups + 1))
    # speech/silence: mean power over the frame's +-context/2 neighbourhood
    half = max(1, int(round(context_s / 2 / lm.hop_s)))
    e_s = uniform_filter1d(e_lin, 2 * half + 1, mode="nearest")
    energy_db = 10 * np.log10(_sample_rows(e_s[:, None], t, lm.hop_s)[:, 0] + 1e-10 * max(float(e_s.max()), 1e-30))  # floor 100 dB below the peak
    speech = speech_mask(energy_db)
    feats = raw
    if normalize and len(raw):
        ref = raw[speech] if speech.sum() >= 5 else raw
        mu = ref.mean(axis=0)
        sd = ref.std(axis=0)
        feats = np.clip((raw - mu) / np.maximum(sd, 1e-3 * max(float(sd.max()), 1e-6)), -clip, clip)
    return FrameAudio(features=feats.astype(np.float32), raw=raw.astype(np.float32),
                      energy_db=energy_db.astype(np.float32), speech=speech)
