"""Frames to look at after a lip-synced dub: the widest target mouths and the largest head motion.

    .venv/bin/python bench/inspect_frames.py PROJECT_DIR OUTPUT_VIDEO [--lang es] [--n 10] [-o DIR]

Reads the project's face analysis and ``lipsync/<lang>/plans.json``, picks the ``n`` re-animated
frames whose donor mouth is widest open (the target mouth opening: inner-lip gap over eye-corner
distance of the donor frame) and the ``n`` frames with the largest head motion (displacement of the
face's stable landmarks from the previous frame, in inter-ocular units), and writes for each a PNG
with the source frame's face region on the left and the output's on the right (same crop, 2x
nearest-neighbour upscale when the face is small), plus a contact sheet of each set. Prints the
chosen frames with their figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _frames(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    from lipdub.faces.analyze import iter_frames

    out = {}
    last = max(wanted)
    for i, rgb in iter_frames(path):
        if i in wanted:
            out[i] = rgb
        if i >= last:
            break
    return out


def main() -> None:
    import cv2

    from lipdub.contracts.faces import FaceAnalysis

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("project", type=Path)
    ap.add_argument("output", type=Path)
    ap.add_argument("--lang", default="es")
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("-o", "--out-dir", type=Path, default=Path("out/inspect"))
    args = ap.parse_args()

    manifest = json.loads((args.project / "manifest.json").read_text())
    source = Path(manifest["input_path"])
    analysis = FaceAnalysis.load(args.project / "faces")
    plans = json.loads((args.project / f"lipsync/{args.lang}/plans.json").read_text())["plans"]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    picks: dict[str, list[tuple[int, int, float]]] = {"mouth": [], "motion": []}
    for pl in plans:
        track = next(t for t in analysis.tracks if t.id == pl["track"])
        frames = np.asarray(pl["frames"], np.int64)
        donors = np.asarray(pl["source_frames"] or pl["frames"], np.int64)
        opening = track.mouth_opening[donors - track.start_frame]
        lm = track.landmarks[frames - track.start_frame][:, :, :2].astype(np.float64)
        prev = track.landmarks[np.maximum(frames - track.start_frame - 1, 0)][:, :, :2].astype(np.float64)
        iod = np.linalg.norm(lm[:, 33] - lm[:, 263], axis=1)
        stable = [33, 133, 263, 362, 168, 6, 1]
        motion = np.linalg.norm(lm[:, stable] - prev[:, stable], axis=2).mean(axis=1) / np.maximum(iod, 1e-6)
        for k in np.argsort(-opening)[: args.n]:
            picks["mouth"].append((int(frames[k]), track.id, float(opening[k])))
        for k in np.argsort(-motion)[: args.n]:
            picks["motion"].append((int(frames[k]), track.id, float(motion[k])))
    wanted = {f for v in picks.values() for f, _, _ in v}
    if not wanted:
        print("no re-animated frame in the plans")
        return
    src = _frames(source, wanted)
    dst = _frames(args.output, wanted)
    for kind, items in picks.items():
        tiles = []
        print(f"{kind}: frame track value")
        for f, tid, v in sorted(items):
            track = next(t for t in analysis.tracks if t.id == tid)
            x0, y0, x1, y1 = track.boxes[f - track.start_frame].astype(int)
            w, h = x1 - x0, y1 - y0
            x0, y0 = max(0, x0 - w // 4), max(0, y0 - h // 8)
            x1, y1 = x1 + w // 4, y1 + h // 3
            a, b = src[f][y0:y1, x0:x1], dst[f][y0:y1, x0:x1]
            pair = np.concatenate([a, np.full((a.shape[0], 4, 3), 255, np.uint8), b], axis=1)
            if pair.shape[0] < 300:
                pair = cv2.resize(pair, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
            name = args.out_dir / f"{kind}_{f:05d}.png"
            cv2.imwrite(str(name), cv2.cvtColor(pair, cv2.COLOR_RGB2BGR))
            tiles.append(cv2.resize(pair, (512, int(512 * pair.shape[0] / pair.shape[1]))))
            print(f"  {f:5d} {tid:3d} {v:.4f}  {name}")
        hmax = max(t.shape[0] for t in tiles)
        tiles = [np.pad(t, ((0, hmax - t.shape[0]), (0, 0), (0, 0))) for t in tiles]
        rows = [np.concatenate(tiles[i:i + 2], axis=1) for i in range(0, len(tiles), 2)]
        wmax = max(r.shape[1] for r in rows)
        rows = [np.pad(r, ((0, 0), (0, wmax - r.shape[1]), (0, 0))) for r in rows]
        sheet = args.out_dir / f"{kind}_sheet.png"
        cv2.imwrite(str(sheet), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
        print(f"  sheet: {sheet}")


if __name__ == "__main__":
    main()
