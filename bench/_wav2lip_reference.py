"""An equivalent of the official Wav2Lip inference pipeline (Rudrabha/Wav2Lip ``inference.py``), for the
speed comparison of ``bench/lipsync_vs_wav2lip.py``. Run as its own process, like the official script:

    python bench/_wav2lip_reference.py --checkpoint CKPT --face VIDEO --audio WAV --outfile OUT.mp4 \
        [--box TOP BOTTOM LEFT RIGHT] [--s3fd-seed 0]

No code of the official repository is here: this follows its published pipeline step by step, with
the same libraries and defaults (read with the project's code search, not copied):

1. every frame read into memory with ``cv2.VideoCapture`` (BGR);
2. the 16 kHz audio's normalised log-mel spectrogram (the reference front end, which
   ``lipdub.backends.lipsync.wav2lip_audio.melspectrogram`` reproduces) cut into 16-frame windows at
   ``80 / fps`` mel frames per video frame; the frames cut to the number of windows;
3. faces: with ``--box`` the given box on every frame; otherwise S3FD (Zhang et al., ICCV 2017; the
   layer layout of the official ``face_detection/detection/sfd/net_s3fd.py``: VGG-16 trunk, fc6/fc7
   as convolutions, conv6/conv7 extra layers, L2-normalised conv3_3/4_3/5_3, one classification and
   one box-regression head per scale, max-out background on the first) with **random weights** (the
   official script downloads ``s3fd.pth``; speed does not depend on the weights) on batches of 16 whole
   frames, BGR->RGB, mean (104, 117, 123) subtracted, softmax, every anchor position above 0.05 decoded
   one by one (priors ``stride * 4``, variances 0.1 / 0.2), NMS at 0.3, boxes above 0.5 kept, the
   first taken; pads (0, 10, 0, 0); boxes smoothed over 5 frames;
4. crops resized to 96x96, batches of 128: lower half masked, concatenated with the reference,
   /255; the Wav2Lip generator (``lipdub.backends.lipsync.wav2lip_model.Wav2Lip``, the official layout)
   loaded from the checkpoint on the first batch (``module.`` prefixes stripped); the output resized
   back into each frame and written with ``cv2.VideoWriter`` (DIVX AVI);
5. ``ffmpeg -i AUDIO -i result.avi -strict -2 -q:v 1 OUT``.

With random weights S3FD finds "faces" everywhere (every position scores about 0.5), so its
per-anchor decoding loop runs over nearly every position, as it would on the official script with
random weights; a frame where it keeps nothing takes the whole frame (the official script stops
there).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np
import soundfile as sf
import torch
import torch.nn as nn
import torch.nn.functional as F

from lipdub.backends.lipsync.wav2lip_audio import melspectrogram
from lipdub.backends.lipsync.wav2lip_model import Wav2Lip
from lipdub.tools import ffmpeg_exe

IMG_SIZE = 96
MEL_STEP = 16
# S3FD, per the published layout: (name, in, out, kernel, stride, padding) of each convolution.
_TRUNK = [("conv1_1", 3, 64), ("conv1_2", 64, 64), "pool", ("conv2_1", 64, 128), ("conv2_2", 128, 128), "pool",
          ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256), "f3", "pool",
          ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512), "f4", "pool",
          ("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3", 512, 512), "f5", "pool"]
_HEADS = [("conv3_3", 256, 4), ("conv4_3", 512, 2), ("conv5_3", 512, 2), ("fc7", 1024, 2), ("conv6_2", 512, 2), ("conv7_2", 256, 2)]


class _L2Norm(nn.Module):
    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10) * self.weight.view(1, -1, 1, 1)


class S3FD(nn.Module):
    """S3FD with the official layer layout (see the module docstring); forward returns
    ``[cls, reg] * 6`` per scale (strides 4 ... 128)."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.ModuleDict({n: nn.Conv2d(i, o, 3, 1, 1) for n, i, o in (x for x in _TRUNK if isinstance(x, tuple))})
        self.fc6 = nn.Conv2d(512, 1024, 3, 1, 3)
        self.fc7 = nn.Conv2d(1024, 1024, 1, 1, 0)
        self.conv6_1, self.conv6_2 = nn.Conv2d(1024, 256, 1, 1, 0), nn.Conv2d(256, 512, 3, 2, 1)
        self.conv7_1, self.conv7_2 = nn.Conv2d(512, 128, 1, 1, 0), nn.Conv2d(128, 256, 3, 2, 1)
        self.norms = nn.ModuleList([_L2Norm(256, 10), _L2Norm(512, 8), _L2Norm(512, 5)])
        self.conf = nn.ModuleList([nn.Conv2d(c, k, 3, 1, 1) for _, c, k in _HEADS])
        self.loc = nn.ModuleList([nn.Conv2d(c, 4, 3, 1, 1) for _, c, _ in _HEADS])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats, h = [], x
        for item in _TRUNK:
            if item == "pool":
                h = F.max_pool2d(h, 2, 2)
            elif isinstance(item, str):
                feats.append(h)
            else:
                h = F.relu(self.trunk[item[0]](h))
        h = F.relu(self.fc7(F.relu(self.fc6(h))))
        feats.append(h)
        h = F.relu(self.conv6_2(F.relu(self.conv6_1(h))))
        feats.append(h)
        h = F.relu(self.conv7_2(F.relu(self.conv7_1(h))))
        feats.append(h)
        feats[:3] = [n(f) for n, f in zip(self.norms, feats[:3])]
        out = []
        for k, f in enumerate(feats):
            c = self.conf[k](f)
            if k == 0:  # max-out background label over the first three channels
                c = torch.cat([torch.max(torch.max(c[:, 0:1], c[:, 1:2]), c[:, 2:3]), c[:, 3:4]], dim=1)
            out += [c, self.loc[k](f)]
        return out


def _nms(dets: np.ndarray, thresh: float) -> list[int]:
    if len(dets) == 0:
        return []
    x1, y1, x2, y2, scores = dets.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order, keep = scores.argsort()[::-1], []
    while order.size:
        i = order[0]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[order[1:]]) - np.maximum(x1[i], x1[order[1:]]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[order[1:]]) - np.maximum(y1[i], y1[order[1:]]) + 1)
        ovr = w * h / (areas[i] + areas[order[1:]] - w * h)
        order = order[np.where(ovr <= thresh)[0] + 1]
    return keep


def _detect_batch(net: S3FD, images_bgr: np.ndarray) -> list[tuple[int, int, int, int] | None]:
    """One batch through S3FD and its anchor-by-anchor decoding (module docstring, step 3)."""
    imgs = images_bgr[..., ::-1].copy().astype(np.float64) - np.array([104, 117, 123])
    x = torch.from_numpy(imgs.transpose(0, 3, 1, 2)).float()
    with torch.no_grad():
        olist = net(x)
    for i in range(len(olist) // 2):
        olist[i * 2] = F.softmax(olist[i * 2], dim=1)
    rows = []
    for i in range(len(olist) // 2):
        ocls, oreg = olist[i * 2], olist[i * 2 + 1]
        stride = 2 ** (i + 2)
        for _, hi, wi in zip(*np.where(ocls[:, 1, :, :] > 0.05)):
            axc, ayc = stride / 2 + wi * stride, stride / 2 + hi * stride
            score = ocls[:, 1, hi, wi]
            loc = oreg[:, :, hi, wi].contiguous().view(x.shape[0], 1, 4)
            prior = torch.Tensor([[axc, ayc, stride * 4.0, stride * 4.0]]).view(1, 1, 4)
            box = torch.cat((prior[:, :, :2] + loc[:, :, :2] * 0.1 * prior[:, :, 2:], prior[:, :, 2:] * torch.exp(loc[:, :, 2:] * 0.2)), 2)
            box[:, :, :2] -= box[:, :, 2:] / 2
            box[:, :, 2:] += box[:, :, :2]
            rows.append(torch.cat([box[:, 0], score.unsqueeze(1)], 1).cpu().numpy())
    bl = np.array(rows) if rows else np.zeros((1, x.shape[0], 5))
    out = []
    for b in range(x.shape[0]):
        dets = bl[_nms(bl[:, b, :], 0.3), b, :]
        dets = [d for d in dets if d[-1] > 0.5]
        if not dets:
            out.append(None)
            continue
        d = np.clip(dets[0], 0, None)
        out.append(tuple(int(v) for v in d[:-1]))
    return out


def _faces(frames: list[np.ndarray], box, seed: int) -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
    if box is not None:
        y1, y2, x1, x2 = box
        return [(f[y1:y2, x1:x2], (y1, y2, x1, x2)) for f in frames]
    torch.manual_seed(seed)
    net = S3FD().eval()
    preds = []
    for i in range(0, len(frames), 16):
        preds += _detect_batch(net, np.array(frames[i:i + 16]))
    rects = []
    for rect, img in zip(preds, frames):
        if rect is None:
            rect = (0, 0, img.shape[1], img.shape[0])
        rects.append([max(0, rect[0]), max(0, rect[1] - 0), min(img.shape[1], rect[2]), min(img.shape[0], rect[3] + 10)])
    boxes = np.array(rects, float)
    for i in range(len(boxes)):  # smoothed over 5 frames
        window = boxes[len(boxes) - 5:] if i + 5 > len(boxes) else boxes[i:i + 5]
        boxes[i] = np.mean(window, axis=0)
    return [(img[int(y1):int(y2), int(x1):int(x2)], (int(y1), int(y2), int(x1), int(x2))) for img, (x1, y1, x2, y2) in zip(frames, boxes)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--face", required=True)
    ap.add_argument("--audio", required=True)
    ap.add_argument("--outfile", required=True)
    ap.add_argument("--box", nargs=4, type=int, default=None)
    ap.add_argument("--s3fd-seed", type=int, default=0)
    ap.add_argument("--wav2lip-batch-size", type=int, default=128)
    args = ap.parse_args()
    cap = cv2.VideoCapture(args.face)
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    wav, sr = sf.read(args.audio, dtype="float32")
    mel = melspectrogram(wav if wav.ndim == 1 else wav.mean(1), sr)
    chunks, mult, i = [], 80.0 / fps, 0
    while True:
        start = int(i * mult)
        if start + MEL_STEP > mel.shape[1]:
            chunks.append(mel[:, mel.shape[1] - MEL_STEP:])
            break
        chunks.append(mel[:, start:start + MEL_STEP])
        i += 1
    frames = frames[:len(chunks)]
    faces = _faces(frames, args.box, args.s3fd_seed)
    with tempfile.TemporaryDirectory() as tmp:
        avi = str(Path(tmp) / "result.avi")
        model = writer = None
        for b in range(0, len(chunks), args.wav2lip_batch_size):
            idx = [k % len(frames) for k in range(b, min(b + args.wav2lip_batch_size, len(chunks)))]
            img = np.asarray([cv2.resize(faces[k][0], (IMG_SIZE, IMG_SIZE)) for k in idx])
            mels = np.asarray([chunks[k] for k in range(b, b + len(idx))])
            masked = img.copy()
            masked[:, IMG_SIZE // 2:] = 0
            img_b = np.concatenate((masked, img), axis=3) / 255.0
            mel_b = mels.reshape(len(mels), mels.shape[1], mels.shape[2], 1)
            if model is None:
                ckpt = torch.load(args.checkpoint, map_location=lambda s, loc: s)
                model = Wav2Lip()
                model.load_state_dict({k.replace("module.", ""): v for k, v in ckpt["state_dict"].items()})
                model = model.eval()
                h, w = frames[0].shape[:2]
                writer = cv2.VideoWriter(avi, cv2.VideoWriter_fourcc(*"DIVX"), fps, (w, h))
            with torch.no_grad():
                pred = model(torch.FloatTensor(np.transpose(mel_b, (0, 3, 1, 2))), torch.FloatTensor(np.transpose(img_b, (0, 3, 1, 2))))
            pred = pred.cpu().numpy().transpose(0, 2, 3, 1) * 255.0
            for p, k in zip(pred, idx):
                f = frames[k].copy()
                y1, y2, x1, x2 = faces[k][1]
                f[y1:y2, x1:x2] = cv2.resize(p.astype(np.uint8), (x2 - x1, y2 - y1))
                writer.write(f)
        writer.release()
        subprocess.run([ffmpeg_exe(), "-y", "-v", "error", "-i", args.audio, "-i", avi, "-strict", "-2", "-q:v", "1", args.outfile], check=True)


if __name__ == "__main__":
    main()
