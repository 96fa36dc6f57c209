"""Stage 4 backend ``resemblyzer``: d-vector embeddings + agglomerative clustering.

Method (after Wang et al., "Speaker Diarization with LSTM", ICASSP 2018, with the GE2E d-vector
encoder of Wan et al., ICASSP 2018, as packaged by Resemble AI's ``resemblyzer``; its 3-layer
LSTM weights ``pretrained.pt`` ship with the package, no download):

1. The 16 kHz audio is volume-normalized like ``resemblyzer.preprocess_wav`` (to -30 dBFS,
   increase only; its silence trimming is not used since it would shift times) and turned into
   the encoder's 40-band mel spectrogram (25 ms windows, 10 ms hop).
2. Inside every VAD speech region, windows of ``window_s`` (default 1.5 s, close to the 1.6 s
   partial utterances the encoder was trained on) every ``step_s`` (default 0.5 s) are embedded;
   a region shorter than a window gets one window of its own length (at least ``min_window_s``).
3. The full-length windows are clustered with scikit-learn ``AgglomerativeClustering``, Ward
   linkage on the L2-normalized d-vectors (squared Euclidean distance between unit vectors is
   ``2 - 2 cos``, so this is cosine geometry; average linkage was tried and isolates single
   turn-straddling windows instead of splitting speakers). With ``num_speakers`` given, into
   exactly that many clusters. Otherwise every k = 2..``max_speakers`` is scored with the
   silhouette coefficient (Rousseeuw 1987, cosine), clusters holding less than
   ``min_cluster_s`` of speech (the time their windows cover) are merged into their nearest neighbour, and the result is
   kept only if its silhouette reaches ``min_silhouette`` and its two closest centroids are
   further apart than ``min_centroid_distance`` (cosine distance); else it is one speaker.
4. Every 10 ms frame in a speech region is scored against each cluster centroid with the
   Hann-weighted average of the cosine similarities of the windows covering it; the best
   centroid labels the frame, labels are smoothed with a majority (mode) filter of
   ``smooth_s``, consecutive frames are merged into turns clipped to the speech regions, and
   speakers are renamed ``SPEAKER_00``.. in order of first appearance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ...audio import resample, to_mono
from ...contracts.diarize import SpeakerTurn
from ...contracts.vad import SpeechRegion
from ...errors import ConfigError, InputError
from ...registry import require_module
from ...voice.encoder import resemblyzer_module, voice_encoder

logger = logging.getLogger(__name__)

#: Rate of the resemblyzer encoder (``resemblyzer.hparams.sampling_rate``).
ENCODER_SAMPLE_RATE_HZ = 16000
#: Mel hop of the encoder, 10 ms (``resemblyzer.hparams.mel_window_step``).
_HOP_SAMPLES = 160
_FRAME_S = _HOP_SAMPLES / ENCODER_SAMPLE_RATE_HZ


@dataclass
class _Windows:
    """Embedded analysis windows: frame spans ``[start, stop)`` and L2-normalized embeddings ``(n, 256)``."""

    start: np.ndarray
    stop: np.ndarray
    full: np.ndarray  # bool: window has the full length (used for clustering)
    embeddings: np.ndarray


class ResemblyzerDiarizer:
    """Who speaks when, with resemblyzer d-vectors and agglomerative clustering (see module doc).

    Args:
        window_s: embedding window length in seconds (default 1.5).
        step_s: hop between windows in seconds (default 0.5); also bounds the time resolution of
            speaker changes before frame scoring refines them.
        min_window_s: shortest window embedded for a short speech region (default 0.5).
        max_speakers: upper bound of the automatic speaker count (default 8).
        min_silhouette: smallest silhouette (cosine) for accepting more than one speaker
            (default 0.1; Rousseeuw's scale: <= 0.25 means no substantial structure, we accept
            weak structure because d-vector windows of one speaker are spread).
        min_centroid_distance: smallest cosine distance between two speaker centroids for
            accepting them as different people in automatic mode (default 0.22, centroid cosine
            similarity below 0.78). Measured on the shared test clips with the defaults: the
            best 2-way split of one speaker's windows gives 0.11-0.20 (sp_en_jfk, th_latentsync
            demo1/2, sp_de, sp_fr, mu_hallo_4), two different voices concatenated 0.24-0.54.
            Two similar voices on one telephone channel (sp_en_2spk_pyannote_sample) give only
            about 0.11-0.20 and are counted as one speaker: pass ``num_speakers`` there.
        min_cluster_s: clusters with less speech than this (seconds covered by their windows)
            are merged into the nearest cluster in automatic mode (default 2.0). Counting window
            hops instead undercounts short turns: a 2.1 s turn holds 3 windows, 1.5 s of hops, and
            the second speaker of a 5 s two-person exchange (the test's side-by-side talking heads,
            centroid distance 0.56, silhouette 0.81) was merged into the first.
        smooth_s: length of the majority filter over frame labels (default 0.5 s).

    Raises:
        ConfigError: an option is out of range.
    """

    name = "resemblyzer"

    def __init__(
        self,
        *,
        window_s: float = 1.5,
        step_s: float = 0.5,
        min_window_s: float = 0.5,
        max_speakers: int = 8,
        min_silhouette: float = 0.1,
        min_centroid_distance: float = 0.22,
        min_cluster_s: float = 2.0,
        smooth_s: float = 0.5,
    ) -> None:
        if not 0.2 <= window_s <= 10.0:
            raise ConfigError(f"diarizer window_s must be in [0.2, 10] s, got {window_s}", "use about 1.5 s")
        if not 0.0 < step_s <= window_s:
            raise ConfigError(f"diarizer step_s must be in (0, window_s], got {step_s}", "use about a third of window_s")
        if not 0.0 < min_window_s <= window_s:
            raise ConfigError(f"diarizer min_window_s must be in (0, window_s], got {min_window_s}", "use about 0.5 s")
        if max_speakers < 1:
            raise ConfigError(f"diarizer max_speakers must be >= 1, got {max_speakers}", "use e.g. 8")
        if not -1.0 <= min_silhouette <= 1.0:
            raise ConfigError(f"diarizer min_silhouette must be in [-1, 1], got {min_silhouette}", "use about 0.1")
        if not 0.0 <= min_centroid_distance <= 2.0:
            raise ConfigError(f"diarizer min_centroid_distance must be in [0, 2], got {min_centroid_distance}", "use about 0.22")
        if min_cluster_s < 0 or smooth_s < 0:
            raise ConfigError("diarizer min_cluster_s and smooth_s must be >= 0", "use durations in seconds")
        self.window_s = float(window_s)
        self.step_s = float(step_s)
        self.min_window_s = float(min_window_s)
        self.max_speakers = int(max_speakers)
        self.min_silhouette = float(min_silhouette)
        self.min_centroid_distance = float(min_centroid_distance)
        self.min_cluster_s = float(min_cluster_s)
        self.smooth_s = float(smooth_s)
        self._resemblyzer, _ = resemblyzer_module()
        self._encoder = voice_encoder()

    @classmethod
    def check(cls) -> str:
        """Verify that resemblyzer, torch, scikit-learn and the bundled encoder weights are present.

        Raises:
            BackendUnavailable: a package is missing.
            MissingWeights: ``pretrained.pt`` is missing.
        """
        require_module("sklearn", "scikit-learn")
        _, weights = resemblyzer_module()
        return f"resemblyzer GE2E d-vectors ({weights.name}) + scikit-learn agglomerative clustering, CPU"

    # -- embeddings -------------------------------------------------------------------------

    def _plan_windows(self, regions: list[SpeechRegion], n_frames: int) -> tuple[list[tuple[int, int]], list[bool]]:
        """Window frame spans inside each region (see module doc, step 2)."""
        win = max(1, int(round(self.window_s / _FRAME_S)))
        step = max(1, int(round(self.step_s / _FRAME_S)))
        min_win = max(1, int(round(self.min_window_s / _FRAME_S)))
        spans: list[tuple[int, int]] = []
        full: list[bool] = []
        for region in regions:
            a = max(0, int(round(region.start_s / _FRAME_S)))
            b = min(n_frames, int(round(region.end_s / _FRAME_S)))
            if b <= a:
                continue
            if b - a >= win:
                starts = list(range(a, b - win + 1, step))
                if starts[-1] != b - win:  # cover the end of the region too
                    starts.append(b - win)
                spans.extend((s, s + win) for s in starts)
                full.extend([True] * len(starts))
            else:
                length = max(b - a, min(min_win, n_frames))
                centre = (a + b) // 2
                s = min(max(0, centre - length // 2), n_frames - length)
                spans.append((s, s + length))
                full.append(False)
        return spans, full

    def _embed(self, mel: np.ndarray, spans: list[tuple[int, int]]) -> np.ndarray:
        """L2-normalized d-vectors ``(len(spans), 256)`` of the mel frame spans, batched by length."""
        torch = require_module("torch", "torch")
        out = np.zeros((len(spans), 256), dtype=np.float32)
        by_length: dict[int, list[int]] = {}
        for i, (s, e) in enumerate(spans):
            by_length.setdefault(e - s, []).append(i)
        with torch.inference_mode():
            for length, idx in by_length.items():
                for k in range(0, len(idx), 64):
                    chunk = idx[k : k + 64]
                    batch = np.stack([mel[spans[i][0] : spans[i][0] + length] for i in chunk])
                    out[chunk] = self._encoder(torch.from_numpy(batch)).numpy()
        return out

    def embed_windows(self, audio: np.ndarray, regions: list[SpeechRegion]) -> _Windows:
        """Embed the analysis windows of ``regions`` in 16 kHz mono float32 ``audio``."""
        wav = self._resemblyzer.normalize_volume(audio.astype(np.float32), -30, increase_only=True).astype(np.float32)
        mel = self._resemblyzer.wav_to_mel_spectrogram(wav)
        spans, full = self._plan_windows(regions, mel.shape[0])
        emb = self._embed(mel, spans) if spans else np.zeros((0, 256), dtype=np.float32)
        start = np.array([s for s, _ in spans], dtype=int)
        stop = np.array([e for _, e in spans], dtype=int)
        return _Windows(start, stop, np.array(full, dtype=bool), emb)

    # -- clustering -------------------------------------------------------------------------

    @staticmethod
    def _agglomerative(emb: np.ndarray, k: int) -> np.ndarray:
        from sklearn.cluster import AgglomerativeClustering

        return AgglomerativeClustering(n_clusters=k, metric="euclidean", linkage="ward").fit_predict(emb)

    @staticmethod
    def _centroids(emb: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
        c = np.stack([emb[labels == j].mean(axis=0) for j in range(k)])
        return c / np.linalg.norm(c, axis=1, keepdims=True)

    def cluster(self, emb: np.ndarray, num_speakers: int | None,
                spans: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, dict]:
        """Cluster L2-normalized embeddings ``(n, d)``; returns labels ``(n,)`` 0..k-1 and diagnostics.

        ``spans``: the windows' ``(start, stop)`` encoder frames (10 ms), int ``(n,)`` each, to
        measure each cluster's speech as the time its windows cover; None: ``step_s`` per window.
        """
        from sklearn.metrics import silhouette_score

        n = emb.shape[0]
        info: dict = {}
        if num_speakers is not None:
            k = min(num_speakers, n)
            if k < num_speakers:
                logger.warning("diarize: only %d speech windows, cannot find %d speakers", n, num_speakers)
            return (self._agglomerative(emb, k) if k > 1 else np.zeros(n, dtype=int)), info
        best_k, best_labels, best_sil = 1, np.zeros(n, dtype=int), -1.0
        for k in range(2, min(self.max_speakers, n - 1) + 1):
            labels = self._agglomerative(emb, k)
            sil = float(silhouette_score(emb, labels, metric="cosine"))
            info[f"silhouette_k{k}"] = sil
            if sil > best_sil:
                best_k, best_labels, best_sil = k, labels, sil
        if best_k == 1:
            return best_labels, info
        # merge clusters with too little speech into their nearest neighbour
        labels = best_labels.copy()
        while True:
            ids = np.unique(labels)
            speech = np.array([self._speech_s(labels == j, spans) for j in ids])
            if len(ids) < 2 or speech.min() >= self.min_cluster_s - 1e-9:
                break
            small = ids[np.argmin(speech)]
            cents = {j: emb[labels == j].mean(axis=0) for j in ids}
            others = [j for j in ids if j != small]
            sims = [float(cents[small] @ cents[j] / np.linalg.norm(cents[small]) / np.linalg.norm(cents[j])) for j in others]
            labels[labels == small] = others[int(np.argmax(sims))]
        ids = np.unique(labels)
        labels = np.searchsorted(ids, labels)
        k = len(ids)
        if k < 2:
            return np.zeros(n, dtype=int), info
        cents = self._centroids(emb, labels, k)
        sim = cents @ cents.T
        np.fill_diagonal(sim, -1.0)
        min_dist = float(1.0 - sim.max())
        sil = float(silhouette_score(emb, labels, metric="cosine"))
        info.update(k=k, silhouette=sil, min_centroid_distance=min_dist)
        if sil < self.min_silhouette or min_dist < self.min_centroid_distance:
            return np.zeros(n, dtype=int), info
        return labels, info

    def _speech_s(self, members: np.ndarray, spans: tuple[np.ndarray, np.ndarray] | None) -> float:
        """Seconds of audio covered by the windows in ``members`` (bool ``(n,)``)."""
        if spans is None:
            return float(members.sum()) * self.step_s
        start, stop = spans[0][members], spans[1][members]
        if len(start) == 0:
            return 0.0
        covered = np.zeros(int(stop.max()) + 1, dtype=bool)
        for a, b in zip(start, stop):
            covered[int(a):int(b)] = True
        return float(covered.sum()) * _FRAME_S

    # -- turns ------------------------------------------------------------------------------

    def diarize(
        self,
        audio: np.ndarray,
        sample_rate_hz: int,
        regions: list[SpeechRegion],
        num_speakers: int | None = None,
    ) -> list[SpeakerTurn]:
        """Label the speech regions with speakers.

        Args:
            audio: float32 mono ``(n_samples,)``; 16000 Hz in the pipeline (other rates are
                resampled with ``lipdub.audio.resample``).
            sample_rate_hz: rate of ``audio``.
            regions: VAD speech regions (seconds); only these are labelled.
            num_speakers: exact speaker count, or ``None`` to estimate it (1..``max_speakers``).

        Returns:
            Turns sorted by start, inside the regions, labels ``SPEAKER_00``.. by first appearance.

        Raises:
            InputError: empty / non-finite audio.
            ConfigError: ``num_speakers`` < 1.
        """
        if num_speakers is not None and num_speakers < 1:
            raise ConfigError(f"number of speakers must be >= 1, got {num_speakers}", "leave it unset to estimate it")
        audio = to_mono(np.asarray(audio, dtype=np.float32))
        if audio.size == 0 or not np.all(np.isfinite(audio)):
            raise InputError("diarize: the audio is empty or not finite", "check the extracted audio")
        if sample_rate_hz != ENCODER_SAMPLE_RATE_HZ:
            audio = resample(audio, sample_rate_hz, ENCODER_SAMPLE_RATE_HZ)
        regions = sorted(r for r in regions if r.end_s > r.start_s)
        if not regions:
            return []
        win = self.embed_windows(audio, regions)
        if win.embeddings.shape[0] == 0:
            return []
        use = win.full if win.full.any() else np.ones_like(win.full)
        labels_used, info = self.cluster(win.embeddings[use], num_speakers, (win.start[use], win.stop[use]))
        k = int(labels_used.max()) + 1
        cents = self._centroids(win.embeddings[use], labels_used, k)
        logger.info("diarize: %d windows, %d speakers (%s)", int(use.sum()), k, ", ".join(f"{a}={b:.3g}" for a, b in info.items()))

        turns = self._turns(win, cents, k, regions)
        order: dict[int, str] = {}
        out = []
        for start_s, end_s, lab in sorted(turns):
            name = order.setdefault(lab, f"SPEAKER_{len(order):02d}")
            out.append(SpeakerTurn(start_s=float(start_s), end_s=float(end_s), speaker=name))
        return out


    def _turns(self, win, cents: np.ndarray, k: int, regions: list[SpeechRegion]) -> list[tuple[float, float, int]]:
        """``(start_s, end_s, label)`` turns inside ``regions``: each frame takes the centroid its
        covering windows are most similar to (Hann-weighted), mode-filtered over ``smooth_s``."""
        # frame scores: Hann-weighted mean similarity of the windows covering each frame
        n_frames = int(win.stop.max())
        sims = win.embeddings @ cents.T  # (n_windows, k)
        score = np.zeros((n_frames, k))
        weight = np.zeros(n_frames)
        for (s, e), sim in zip(zip(win.start, win.stop), sims):
            w = np.hanning(e - s + 2)[1:-1]
            score[s:e] += w[:, None] * sim[None, :]
            weight[s:e] += w
        labels = np.argmax(score / np.maximum(weight, 1e-9)[:, None], axis=1)
        covered = weight > 0

        turns: list[tuple[float, float, int]] = []
        smooth = max(1, int(round(self.smooth_s / _FRAME_S)) | 1)
        for region in regions:
            a = max(0, int(round(region.start_s / _FRAME_S)))
            b = min(n_frames, int(round(region.end_s / _FRAME_S)))
            if b <= a:
                continue
            lab = labels[a:b].copy()
            if not covered[a:b].all():  # frames of short regions outside their window
                idx = np.where(covered[a:b])[0]
                if idx.size == 0:
                    continue
                lab = lab[idx[np.clip(np.searchsorted(idx, np.arange(b - a)), 0, idx.size - 1)]]
            lab = _mode_filter(lab, k, smooth)
            change = np.flatnonzero(np.diff(lab)) + 1
            bounds = np.concatenate([[0], change, [b - a]])
            for s, e in zip(bounds[:-1], bounds[1:]):
                start_s = region.start_s if s == 0 else max(region.start_s, (a + s) * _FRAME_S)
                end_s = min(region.end_s, (a + e) * _FRAME_S)
                if e == b - a:
                    end_s = region.end_s
                if end_s > start_s:
                    turns.append((start_s, end_s, int(lab[s])))
        return turns


def _mode_filter(labels: np.ndarray, k: int, width: int) -> np.ndarray:
    """Majority filter of odd ``width`` over integer labels ``(n,)`` in 0..k-1 (ties: lower label)."""
    if width <= 1 or labels.size <= 1 or k == 1:
        return labels
    from scipy.ndimage import uniform_filter1d

    onehot = np.eye(k)[labels]
    counts = uniform_filter1d(onehot, size=width, axis=0, mode="nearest")
    return np.argmax(counts, axis=1)
