"""Visual fidelity of a dub against its source: SSIM and PSNR over the whole frame and outside the
mouth region, and VMAF (DESIGN.md section 4).

* SSIM: Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility to
  structural similarity", IEEE TIP 2004, computed as ``skimage.metrics.structural_similarity`` computes
  it with its defaults (7x7 uniform window, sample covariance, K1 0.01, K2 0.03, reflected borders,
  the mean over the map less a 3-pixel border) on the luma (BT.601, OpenCV ``RGB2GRAY``), with
  OpenCV's box filter in float32 (:func:`ssim_map`: the same mean to 1e-7, and 2-3x faster than
  in float64 at 1080p); the "outside the mouth" figure is the mean of the SSIM map over the pixels outside the
  mouth mask.
* PSNR: ``10 log10(255^2 / MSE)`` on the same luma, whole frame and outside the mask (dB; identical
  frames give ``inf``, reported as None in JSON).
* Mouth mask: for every face track covering a frame (landmarks of the *source* analysis), the box of
  the landmarks below the nose tip (lips, cheeks, jaw), widened by 20 % of the face width on each side
  and below, as the lip-sync compositor's mask reaches below the chin.
* VMAF: Netflix's model ``vmaf_v0.6.1`` through the ``libvmaf`` filter of the FFmpeg build shipped by
  imageio-ffmpeg (the system ffmpeg of Debian 12 has no libvmaf).
* Colour: each video is decoded with its own Y'CbCr matrix and range
  (:func:`lipdub.media.colour.video_colour`: its tags, else the one players assume for its size), so a
  master re-encoded from BT.601 to BT.709 compares equal to its source and one tagged BT.709 over
  BT.601 pixels does not. For VMAF (which reads Y'CbCr) the dub is converted to the source's matrix
  first when they differ, and both are tagged alike so that FFmpeg converts nothing else.

Frames are sampled evenly (``max_frames`` for SSIM / PSNR, at most ``VMAF_MAX_FRAMES`` for VMAF) to keep
the cost bounded; the report states how many.
"""

from __future__ import annotations

import json
import math
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailable, InputError
from ..faces.analyze import open_video
from ..media.colour import Picture, VideoColour, conversion_filter, video_colour
from ..media.probe import probe_video, video_frame_times
from ..tools import die_with_parent, run_child

NOSE_TIP = 1  # MediaPipe Face Mesh landmark index of the nose tip


class NotMeasurable(InputError):
    """A figure that cannot be computed on these videos (frames smaller than the SSIM window); the
    report skips it with this note."""


MASK_PAD = 0.20
SSIM_MAX_FRAMES = 40  # frames SSIM / PSNR compare, evenly spread
VMAF_MAX_FRAMES = 100  # longer videos are scored on every k-th frame (libvmaf n_subsample)


@dataclass
class VisualFigures:
    """SSIM / PSNR of the dub against the source (means over the sampled frames) and VMAF.

    ``per_frame`` lists ``(frame, ssim, ssim_outside_mouth, psnr_db, psnr_outside_mouth_db)`` per sampled
    frame (PSNR None where identical).
    """

    ssim: float
    ssim_outside_mouth: float
    psnr_db: float | None
    psnr_outside_mouth_db: float | None
    frames_compared: int
    frames_total: int
    vmaf: float | None = None
    vmaf_note: str | None = None
    per_frame: list[tuple] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def mouth_mask(shape_hw: tuple[int, int], landmarks_list: list[np.ndarray]) -> np.ndarray:
    """Bool ``(H, W)`` mask, True inside the mouth region of any of the faces given by their
    landmarks (float ``(478, 3)`` pixels)."""
    h, w = shape_hw
    mask = np.zeros((h, w), dtype=bool)
    for lmk in landmarks_list:
        lmk = np.asarray(lmk)
        face_w = float(lmk[:, 0].max() - lmk[:, 0].min())
        low = lmk[lmk[:, 1] >= lmk[NOSE_TIP, 1]]
        if len(low) == 0:
            continue
        pad = MASK_PAD * face_w
        x0, x1 = int(max(0, low[:, 0].min() - pad)), int(min(w, math.ceil(low[:, 0].max() + pad)))
        y0, y1 = int(max(0, lmk[NOSE_TIP, 1])), int(min(h, math.ceil(low[:, 1].max() + pad)))
        mask[y0:y1, x0:x1] = True
    return mask


def _psnr(mse: float) -> float | None:
    return None if mse <= 0 else 10 * math.log10(255.0 ** 2 / mse)


SSIM_WINDOW = 7  # skimage's default window (uniform filter)
SSIM_K1, SSIM_K2 = 0.01, 0.03


def ssim_map(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> tuple[float, np.ndarray]:
    """Mean SSIM and the SSIM map of two single-channel images of the same shape, as
    ``skimage.metrics.structural_similarity(a, b, data_range=data_range, full=True)`` with its other
    defaults (see the module docstring) computes them, in float32 (OpenCV's box filter); float32
    ``(H, W)`` map, the mean accumulated in float64. Against skimage's float64: the mean within
    1e-7 and the map within 3e-4 on the shared 1080x1920 ``th_latentsync_demo1`` dub (2-3x faster
    than float64; the report rounds SSIM to 5 decimals).

    Raises:
        InputError: the shapes differ or an image is smaller than the window.
    """
    import cv2

    if a.shape != b.shape or a.ndim != 2 or min(a.shape) < SSIM_WINDOW:
        raise InputError(f"SSIM needs two 2-D images of the same shape, at least {SSIM_WINDOW} px (got {a.shape}, {b.shape})",
                         "compare frames of the same size")
    x, y = a.astype(np.float32), b.astype(np.float32)

    def mean(z: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(z, cv2.CV_32F, (SSIM_WINDOW, SSIM_WINDOW), normalize=True, borderType=cv2.BORDER_REFLECT)

    n = SSIM_WINDOW * SSIM_WINDOW
    cov_norm = np.float32(n / (n - 1))
    # skimage's expressions, evaluated in place (a third fewer full-frame temporaries)
    ux, uy = mean(x), mean(y)
    uxx, uyy, uxy = ux * ux, uy * uy, ux * uy
    del ux, uy
    vx = mean(x * x)
    vx -= uxx
    vx *= cov_norm
    vy = mean(y * y)
    vy -= uyy
    vy *= cov_norm
    vxy = mean(np.multiply(x, y, out=x))
    vxy -= uxy
    vxy *= cov_norm
    c1, c2 = np.float32((SSIM_K1 * data_range) ** 2), np.float32((SSIM_K2 * data_range) ** 2)
    s = 2 * uxy  # ((2 ux uy + c1) (2 vxy + c2)) / ((ux^2 + uy^2 + c1) (vx + vy + c2))
    s += c1
    vxy *= 2
    vxy += c2
    s *= vxy
    uxx += uyy
    uxx += c1
    vx += vy
    vx += c2
    uxx *= vx
    s /= uxx
    pad = (SSIM_WINDOW - 1) // 2
    return float(s[pad:-pad, pad:-pad].mean(dtype=np.float64)), s


def frame_figures(ref_rgb: np.ndarray, dist_rgb: np.ndarray, mask: np.ndarray) -> tuple[float, float, float | None, float | None]:
    """``(ssim, ssim_outside, psnr_db, psnr_outside_db)`` of two uint8 RGB frames ``(H, W, 3)``;
    ``mask`` bool ``(H, W)`` marks the mouth region excluded from the ``outside`` figures.

    Raises:
        InputError: the frames differ in size. NotMeasurable: they are smaller than the SSIM window.
    """
    import cv2

    if ref_rgb.shape != dist_rgb.shape:
        raise InputError(f"frame sizes differ: source {ref_rgb.shape[:2]}, dub {dist_rgb.shape[:2]}",
                         "compare the dub with the source it was made from")
    if min(ref_rgb.shape[:2]) < SSIM_WINDOW:
        raise NotMeasurable(f"frames of {ref_rgb.shape[1]}x{ref_rgb.shape[0]} are smaller than the {SSIM_WINDOW}x{SSIM_WINDOW} SSIM window",
                            "SSIM, PSNR and VMAF are not computed for such a video")
    a = cv2.cvtColor(ref_rgb, cv2.COLOR_RGB2GRAY)
    b = cv2.cvtColor(dist_rgb, cv2.COLOR_RGB2GRAY)
    ssim, smap = ssim_map(a, b, 255.0)
    diff2 = cv2.absdiff(a, b).astype(np.float32)  # |a - b| is exact in uint8, its square (<= 255^2) exact in float32
    diff2 *= diff2
    out = ~mask
    ssim_out = float(smap[out].mean(dtype=np.float64)) if out.any() else float(ssim)
    mse = float(diff2.mean(dtype=np.float64))
    mse_out = float(diff2[out].mean(dtype=np.float64)) if out.any() else mse
    return float(ssim), ssim_out, _psnr(mse), _psnr(mse_out)


SEEK_GAP_FRAMES = 250  # picks further apart than this on average are reached by seeking, not by decoding every frame


def _emit(frame, colour: VideoColour, pictures: bool):
    """What :func:`iter_selected_frames` yields of a decoded frame: its RGB, or its :class:`Picture`."""
    picture = Picture(frame, colour, getattr(frame, "rotation", 0) or 0)
    return picture if pictures else picture.rgb()


def iter_selected_frames(path: str | Path, wanted: set[int], colour: VideoColour | None = None, pictures: bool = False):
    """Decode ``path`` and yield ``(index, rgb)`` (uint8 ``(H, W, 3)``, display orientation) for the
    decode indices in ``wanted`` only, in increasing order; the other frames are decoded but not
    converted. ``pictures``: yield ``(index, picture)`` instead, each a
    :class:`lipdub.media.colour.Picture` the consumer converts (whole or a region). Picks sparser than one in :data:`SEEK_GAP_FRAMES` (a long video's sample) are reached by
    seeking to the keyframe before each and decoding from there (:func:`_seek_selected`), which
    gives the same pictures for a fraction of the decoding. ``colour``: the matrix and range to read
    the pixels with (None: the file's own, :func:`video_colour`).

    Raises:
        InputError: the file cannot be opened or decoded.
    """
    import av

    path = Path(path)
    if colour is None:
        colour = video_colour(probe_video(path))
    picks = sorted(wanted)
    if len(picks) > 1 and (picks[-1] - picks[0]) / (len(picks) - 1) > SEEK_GAP_FRAMES:
        yield from _seek_selected(path, picks, colour, pictures)
        return
    last = max(wanted, default=-1)
    with open_video(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for index, frame in enumerate(container.decode(stream)):
                if index > last:
                    break
                if index in wanted:
                    yield index, _emit(frame, colour, pictures)
        except av.error.FFmpegError as exc:
            raise InputError(f"{path}: decoding video failed ({exc.strerror})", "re-export or re-download the file") from None


def _seek_selected(path: Path, picks: list[int], colour: VideoColour, pictures: bool = False):
    """:func:`iter_selected_frames` by seeking: frame ``i`` is the one whose pts is the ``i``-th of the
    sorted packet pts (decode order = presentation order of the sorted pts); a pick the seek does not
    land on exactly (a stream without usable keyframe seeking) is decoded from the start instead."""
    import av

    with open_video(path) as container:
        stream = container.streams.video[0]
        pts = sorted(p.pts for p in container.demux(stream) if p.size and p.pts is not None)
    rest: list[int] = []
    with open_video(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for k, i in enumerate(picks):
                if i >= len(pts):
                    break
                container.seek(int(pts[i]), stream=stream, backward=True, any_frame=False)
                landed = False
                for frame in container.decode(stream):
                    if frame.pts is None or frame.pts < pts[i]:
                        continue
                    if frame.pts == pts[i]:
                        landed = True
                        yield i, _emit(frame, colour, pictures)
                    break
                if not landed:  # pragma: no cover - a stream whose seeking does not land on the frame
                    rest = picks[k:]
                    break
        except av.error.FFmpegError as exc:
            raise InputError(f"{path}: decoding video failed ({exc.strerror})", "re-export or re-download the file") from None
    if rest:  # pragma: no cover - decoded from the start instead, in order
        last, wanted = rest[-1], set(rest)
        with open_video(path) as container:
            for index, frame in enumerate(container.decode(container.streams.video[0])):
                if index > last:
                    break
                if index in wanted:
                    yield index, _emit(frame, colour, pictures)


def vmaf_subsample(n_frames: int) -> int:
    """Every how many frames VMAF is computed: at most :data:`VMAF_MAX_FRAMES` frames."""
    return max(1, math.ceil(n_frames / VMAF_MAX_FRAMES))


def ssim_picks(n_frames: int, max_frames: int = SSIM_MAX_FRAMES) -> set[int]:
    """The frames SSIM / PSNR compare: ``max_frames`` evenly spread over ``n_frames`` (all when fewer)."""
    return set(np.unique(np.linspace(0, n_frames - 1, min(max_frames, n_frames)).round().astype(int)).tolist())


def compare_videos(source: str | Path, dub: str | Path, analysis=None, max_frames: int = SSIM_MAX_FRAMES, vmaf: bool = True,
                   dub_frames=None) -> VisualFigures:
    """SSIM / PSNR (whole frame and outside the mouth) and VMAF of ``dub`` against ``source``.

    Args:
        analysis: the :class:`~lipdub.contracts.faces.FaceAnalysis` of ``source`` (mouth masks); None: no
            mask (the outside figures equal the whole-frame ones).
        max_frames: frames compared, evenly spread (all when the video is shorter).
        vmaf: also run VMAF (needs an FFmpeg with libvmaf).
        dub_frames: the dub's frames ``(index, rgb or Picture)`` at :func:`ssim_picks` ``(n_frames, max_frames)``,
            in increasing order, decoded by the caller (one decode of the dub shared with another
            measurement, :func:`lipdub.media.prefetch.fanned_out`); None: decoded here. Closed here.
    Raises:
        InputError: the videos differ in frame count or size.
    """
    try:
        n_src, n_dub = len(video_frame_times(Path(source))), len(video_frame_times(Path(dub)))
        if n_src != n_dub:
            raise InputError(f"the dub has {n_dub} frames and the source {n_src}", "compare the dub with the source it was made from")
    except BaseException:
        if dub_frames is not None:
            dub_frames.close()
        raise
    picks = ssim_picks(n_src, max_frames)
    step = vmaf_subsample(n_src)
    vmaf_run, vmaf_note = None, None
    if vmaf:  # FFmpeg's libvmaf runs in its own process beside the SSIM below
        try:
            vmaf_run = VmafRun(source, dub, subsample=step)
        except BackendUnavailable as exc:
            vmaf_note = str(exc)
    dub_iter = iter_selected_frames(dub, picks) if dub_frames is None else dub_frames
    try:
        rows = []
        for (i, ref), (j, dst) in zip(iter_selected_frames(source, picks), dub_iter):
            if i != j:  # pragma: no cover - both iterators yield the picks in increasing order
                raise InputError(f"frame {i} of the source met frame {j} of the dub", "compare the dub with the source it was made from")
            if isinstance(dst, Picture):  # decoded by the caller, converted here
                dst = dst.rgb()
            lmks = []
            if analysis is not None:
                for t in analysis.tracks_at(i):
                    lmks.append(t.landmarks_raw[t.index_of(i)])
            m = mouth_mask(ref.shape[:2], lmks)
            rows.append((i, *frame_figures(ref, dst, m)))
        if not rows:
            raise InputError(f"no frames decoded from {source}", "check the source video")

        fig = _figures(rows, n_src)
    except BaseException:
        if vmaf_run is not None:
            vmaf_run.cancel()
        raise
    finally:
        dub_iter.close()
    fig.vmaf_note = vmaf_note
    if vmaf_run is not None:
        fig.vmaf = vmaf_run.result()
        fig.vmaf_note = f"vmaf_v0.6.1 (imageio-ffmpeg libvmaf), mean over one frame in {step}" if step > 1 else \
            "vmaf_v0.6.1 (imageio-ffmpeg libvmaf), mean over all frames"
    return fig


def _figures(rows: list[tuple], n_src: int) -> VisualFigures:
    """The means of the per-frame rows ``(frame, ssim, ssim_outside, psnr, psnr_outside)``."""

    def mean_psnr(col):
        vals = [r[col] for r in rows]
        if all(v is None for v in vals):
            return None
        # average the MSE (not the dB) so one identical frame does not make the mean infinite
        mses = [0.0 if v is None else 255.0 ** 2 / 10 ** (v / 10) for v in vals]
        return _psnr(float(np.mean(mses)))

    return VisualFigures(
        ssim=round(float(np.mean([r[1] for r in rows])), 5),
        ssim_outside_mouth=round(float(np.mean([r[2] for r in rows])), 5),
        psnr_db=None if (p := mean_psnr(3)) is None else round(p, 3),
        psnr_outside_mouth_db=None if (q := mean_psnr(4)) is None else round(q, 3),
        frames_compared=len(rows), frames_total=n_src,
        per_frame=[(r[0], round(r[1], 5), round(r[2], 5), None if r[3] is None else round(r[3], 3), None if r[4] is None else round(r[4], 3))
                   for r in rows],
    )


class VisualRun:
    """:func:`compare_videos` started now and run beside the caller: VMAF in its FFmpeg process
    (:class:`VmafRun`) and SSIM / PSNR in a thread (decoding, OpenCV and numpy release the GIL);
    :meth:`result` waits for both. The report stage starts it first, so that it runs while the
    output's faces and the sync figures are measured."""

    def __init__(self, source: str | Path, dub: str | Path, analysis=None, max_frames: int = SSIM_MAX_FRAMES, vmaf: bool = True,
                 dub_frames=None) -> None:
        """``dub_frames``: see :func:`compare_videos`."""
        import threading

        self._vmaf: VmafRun | None = None
        self._note: str | None = None
        if vmaf:
            try:
                self._vmaf = VmafRun(source, dub, subsample=vmaf_subsample(len(video_frame_times(Path(source)))))
            except BackendUnavailable as exc:
                self._note = str(exc)
        self._out: list = []
        self._thread = threading.Thread(target=self._ssim, args=(source, dub, analysis, max_frames, dub_frames), name="lipdub-ssim",
                                        daemon=True)
        self._thread.start()

    def _ssim(self, source, dub, analysis, max_frames, dub_frames) -> None:
        try:
            self._out.append(compare_videos(source, dub, analysis, max_frames, vmaf=False, dub_frames=dub_frames))
        except BaseException as exc:  # re-raised by result()
            self._out.append(exc)

    def result(self) -> VisualFigures:
        """The figures (VMAF included when it ran).

        Raises:
            InputError: as :func:`compare_videos`.
        """
        self._thread.join()
        fig = self._out[0]
        if isinstance(fig, BaseException):
            self.cancel()
            raise fig
        fig.vmaf_note = self._note
        if self._vmaf is not None:
            n = fig.frames_total
            step = vmaf_subsample(n)
            fig.vmaf = self._vmaf.result()
            fig.vmaf_note = f"vmaf_v0.6.1 (imageio-ffmpeg libvmaf), mean over one frame in {step}" if step > 1 else \
                "vmaf_v0.6.1 (imageio-ffmpeg libvmaf), mean over all frames"
        return fig

    def cancel(self) -> None:
        """Stop VMAF (the report failed elsewhere); the SSIM thread ends by itself."""
        if self._vmaf is not None:
            self._vmaf.cancel()
            self._vmaf = None


def vmaf_ffmpeg() -> str:
    """Path of an FFmpeg with the libvmaf filter (imageio-ffmpeg's build, then the system one).

    Raises:
        BackendUnavailable: none has libvmaf.
    """
    import shutil

    cands = []
    try:
        import imageio_ffmpeg

        cands.append(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception:  # pragma: no cover - imageio-ffmpeg is a core dependency
        pass
    if shutil.which("ffmpeg"):
        cands.append(shutil.which("ffmpeg"))
    for exe in cands:
        try:
            out = run_child([exe, "-hide_banner", "-filters"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        if " libvmaf " in out:
            return exe
    raise BackendUnavailable("VMAF needs an FFmpeg with libvmaf", "pip install imageio-ffmpeg (its FFmpeg build has libvmaf)")


class VmafRun:
    """VMAF (model vmaf_v0.6.1) of ``distorted`` against ``reference`` over every ``subsample``-th
    frame (libvmaf ``n_subsample``; 1 = all frames), computed by an FFmpeg process started at once;
    :meth:`result` waits for it and returns the mean.

    ``colours``: the Y'CbCr matrices of ``(reference, distorted)`` (None: each file's own,
    :func:`lipdub.media.colour.video_colour`); the distorted video is converted to the reference's
    matrix when they differ (FFmpeg's ``colorspace`` filter), and both are tagged with it.

    Raises:
        BackendUnavailable: no FFmpeg with libvmaf, or matrices the colorspace filter cannot convert
            (at construction).
    """

    def __init__(self, reference: str | Path, distorted: str | Path, threads: int = 2, subsample: int = 1,
                 colours: tuple[VideoColour, VideoColour] | None = None) -> None:
        exe = vmaf_ffmpeg()
        ref_c, dist_c = colours or (video_colour(probe_video(Path(reference))), video_colour(probe_video(Path(distorted))))
        try:
            convert = conversion_filter(dist_c, ref_c)
        except ValueError as exc:
            raise BackendUnavailable(f"VMAF not computed: {exc}", "compare videos that use BT.601, BT.709 or BT.2020 matrices") from None
        tag = f"setparams=colorspace={ref_c.matrix}:range={ref_c.range}"
        dist_chain = ",".join(f for f in ("setpts=PTS-STARTPTS", convert, tag, "format=yuv420p") if f)
        self._tmp = tempfile.TemporaryDirectory(prefix="lipdub_vmaf_")
        self._log = Path(self._tmp.name) / "vmaf.json"
        graph = (f"[0:v]{dist_chain}[d];[1:v]setpts=PTS-STARTPTS,{tag},format=yuv420p[r];"
                 f"[d][r]libvmaf=log_fmt=json:log_path={self._log}:n_threads={threads}:n_subsample={max(1, int(subsample))}")
        self._proc = subprocess.Popen([exe, "-nostdin", "-hide_banner", "-v", "error", "-i", str(distorted), "-i", str(reference),
                                       "-lavfi", graph, "-f", "null", "-"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True, preexec_fn=die_with_parent())

    def cancel(self) -> None:
        """Stop the FFmpeg process (the report failed elsewhere)."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.communicate()
        self._tmp.cleanup()

    def result(self) -> float:
        """The mean VMAF (0-100).

        Raises:
            InputError: FFmpeg failed (its message included).
        """
        try:
            _, err = self._proc.communicate()
            if self._proc.returncode != 0 or not self._log.exists():
                raise InputError(f"VMAF failed: {err.strip()[-300:]}", "check that both videos decode and have the same size")
            data = json.loads(self._log.read_text())
            return round(float(data["pooled_metrics"]["vmaf"]["mean"]), 3)
        finally:
            self._tmp.cleanup()


def vmaf_score(reference: str | Path, distorted: str | Path, threads: int = 2, subsample: int = 1,
               colours: tuple[VideoColour, VideoColour] | None = None) -> float:
    """Mean VMAF (0-100, model vmaf_v0.6.1) of ``distorted`` against ``reference`` over every
    ``subsample``-th frame (libvmaf ``n_subsample``; 1 = all frames), the dub converted to the
    reference's matrix first (``colours``, see :class:`VmafRun`); :class:`VmafRun`, waited for.

    Raises:
        BackendUnavailable: no FFmpeg with libvmaf, or matrices the colorspace filter cannot convert.
        InputError: FFmpeg failed (message included).
    """
    return VmafRun(reference, distorted, threads, subsample, colours).result()
