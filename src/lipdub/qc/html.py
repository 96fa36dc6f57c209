"""The self-contained HTML page of the quality report: the verdict first, then the judged figures, the
plots (matplotlib, Agg backend, embedded as base64 PNG) and the worst-sync frames. No external file,
script or font is referenced, so the page can be mailed or archived as one file.
"""

from __future__ import annotations

import html
import io
import math

import numpy as np

from .model import Report, encode_png

COLOURS = {"pass": "#1a7f37", "warn": "#b35900", "fail": "#c62828", "n/a": "#666666"}


def _fig_png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=96)
    plt.close(fig)
    return encode_png(buf.getvalue())


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_sync_lags(sync: dict) -> str | None:
    """Cross-validated correlation over audio lags for the dub, the source reference and the floor."""
    if "dub" not in sync:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.4))
    for key, label, style in (("dub", "dub", "-"), ("reference", "source reference (source video + source audio)", "--"),
                              ("floor", "floor (source video + dub audio, no lip-sync)", ":")):
        s = sync.get(key)
        if s and s.get("lags"):
            ax.plot(s["lags"], s["correlation_by_lag"], style, marker="o", ms=3,
                    label=f"{label}: offset {s['offset_frames']:+d}, peak {s['peak_correlation']:.2f}")
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("audio lag (video frames; + = audio late)")
    ax.set_ylabel("cross-validated correlation (unitless)")
    ax.set_title("Lip sync: mouth opening vs speech over lags (landmark score)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1)
    ax.grid(alpha=0.3)
    return _fig_png(fig)


def plot_syncnet(sn: dict) -> str | None:
    """SyncNet mean embedding distance over shifts (LSE-D is the minimum)."""
    d = sn.get("mean_distance_by_shift") if sn else None
    if not d:
        return None
    plt = _plt()
    v = (len(d) - 1) // 2
    shifts = np.arange(-v, v + 1)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.plot(shifts, d, marker="o", ms=3, label="mean distance")
    ax.axhline(float(np.median(d)), color="grey", ls="--", label=f"median (LSE-C = median - min = {sn['lse_c']:.2f})")
    ax.axvline(shifts[int(np.argmin(d))], color="red", ls=":", label=f"minimum (LSE-D = {sn['lse_d']:.2f})")
    ax.set_xlabel("shift (frames at 25 fps)")
    ax.set_ylabel("embedding distance (unitless)")
    ax.set_title("SyncNet: mean distance over shifts")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _fig_png(fig)


def plot_mouth_envelope(sync: dict) -> str | None:
    """Mouth opening (measured and predicted from the audio) against the speech envelope over time."""
    s = sync.get("series")
    if not s:
        return None
    plt = _plt()
    t = np.array(s["time_s"], dtype=float)
    mouth = np.array(s["mouth_opening"], dtype=float)
    pred = np.array([np.nan if v is None else v for v in s["predicted_mouth_opening"]], dtype=float)
    env = np.array(s["speech_envelope_dbfs"], dtype=float)
    fig, ax = plt.subplots(figsize=(10, 4.2))
    l1 = ax.plot(t, mouth, color="tab:blue", lw=1.2, label="mouth opening (measured)")
    l2 = ax.plot(t, pred, color="tab:green", lw=1.0, ls="--", label="mouth opening predicted from the audio")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mouth opening\n(lip gap / inter-ocular dist.)")
    ax2 = ax.twinx()
    l3 = ax2.plot(t, env, color="tab:orange", lw=0.9, alpha=0.8, label="speech envelope (RMS per frame)")
    ax2.set_ylabel("speech envelope (dBFS)")
    lines = l1 + l2 + l3
    for w in sync.get("worst_frames", []):
        ax.axvline(w["time_s"], color="red", alpha=0.35, lw=1)
    if sync.get("worst_frames"):
        lines.append(ax.axvline(np.nan, color="red", alpha=0.35, lw=1, label="worst-sync frames"))
    ax.legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=4)
    ax.set_title("Mouth opening against the speech envelope of the dub")
    ax.grid(alpha=0.3)
    return _fig_png(fig)


def plot_loudness(audio: dict) -> str | None:
    """Short-term loudness over time with the target and the integrated loudness."""
    if not audio or not audio.get("short_term_times_s"):
        return None
    plt = _plt()
    t = np.array(audio["short_term_times_s"], dtype=float)
    st = np.array([np.nan if v is None else v for v in audio["short_term_lufs"]], dtype=float)
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.plot(t, st, marker=".", label="short-term loudness (3 s window)")
    ax.axhline(audio["target_lufs"], color="green", ls="--", label=f"target {audio['target_lufs']:g} LUFS")
    if audio.get("integrated_lufs") is not None:
        ax.axhline(audio["integrated_lufs"], color="tab:purple", ls=":", label=f"integrated {audio['integrated_lufs']:.1f} LUFS")
    ax.set_xlabel("time (s, end of the window)")
    ax.set_ylabel("loudness (LUFS)")
    ax.set_title("Loudness over time (ITU-R BS.1770-4)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _fig_png(fig)


def plot_stretch(timing: dict, thresholds: dict) -> str | None:
    """Per-segment time-stretch and effective speed-up (TTS rate x stretch), the speed-up bar coloured
    by the segment's verdict, with each line's limit."""
    segs = [s for s in (timing or {}).get("segments", []) if s.get("stretch_ratio") is not None]
    if not segs:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 3.6))
    x = np.arange(len(segs))
    ax.bar(x - 0.2, [s["stretch_ratio"] for s in segs], width=0.4, color="#9bbbd9", label="time-stretch ratio (rubberband)")
    ax.bar(x + 0.2, [s.get("speedup") or s["stretch_ratio"] for s in segs], width=0.4,
           color=[COLOURS.get(s["verdict"], "grey") for s in segs], label="effective speed-up (colour = segment verdict)")
    lim = [s.get("speedup_limit") or thresholds.get("stretch_ratio", {}).get("pass_at", 1.25) for s in segs]
    ax.scatter(x, lim, marker="_", s=400, color="black", zorder=3, label="limit of the line")
    ax.axhline(1.0, color="grey", lw=0.8, label="1.0 = not stretched")
    ax.set_xticks(x, [str(s["id"]) for s in segs])
    ax.set_xlabel("segment id")
    ax.set_ylabel("ratio (speed-up: TTS rate x stretch / natural speed)")
    ax.set_title("Per-segment time-stretch and speed-up")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=4)
    lo = min(min(s["stretch_ratio"] for s in segs), 1.0)
    ax.set_ylim(lo - 0.1, max(max(lim), max(s.get("speedup") or s["stretch_ratio"] for s in segs)) + 0.1)
    return _fig_png(fig)


def plot_voice(voice: dict, thresholds: dict) -> str | None:
    """Speaker similarity per speaker with the pass / warn limits."""
    spk = [s for s in (voice or {}).get("speakers", []) if s.get("similarity") is not None]
    if not spk:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.0))
    ax.bar([s["speaker"] for s in spk], [s["similarity"] for s in spk], color="tab:blue", label="cosine similarity (resemblyzer)")
    th = thresholds.get("voice_similarity", {})
    ax.axhline(th.get("pass_at", 0.75), color="green", ls="--", label=f"pass >= {th.get('pass_at', 0.75):g}")
    if th.get("warn_at") is not None:
        ax.axhline(th["warn_at"], color="red", ls=":", label=f"fail < {th['warn_at']:g}")
    ax.set_ylim(0, 1)
    ax.set_xlabel("speaker")
    ax.set_ylabel("cosine similarity (unitless)")
    ax.set_title("Source voice vs dubbed voice")
    ax.legend(fontsize=8, loc="lower right")
    return _fig_png(fig)


def plot_visual(visual: dict) -> str | None:
    """SSIM per sampled frame, whole frame and outside the mouth."""
    rows = (visual or {}).get("per_frame")
    if not rows:
        return None
    plt = _plt()
    f = [r[0] for r in rows]
    fig, ax = plt.subplots(figsize=(10, 3.0))
    ax.plot(f, [r[1] for r in rows], marker=".", label="SSIM whole frame")
    ax.plot(f, [r[2] for r in rows], marker=".", label="SSIM outside the mouth")
    ax.set_xlabel("frame index")
    ax.set_ylabel("SSIM (unitless, 1 = identical)")
    ax.set_title("Visual fidelity against the source (sampled frames)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _fig_png(fig)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isinf(v):
            return "inf"
        return f"{v:.4g}"
    return html.escape(str(v))


def _badge(v: str) -> str:
    return f'<span class="badge" style="background:{COLOURS.get(v, "#666")}">{html.escape(v.upper())}</span>'


def _visemes_table(vis: dict, e) -> list[str]:
    """Per dub line: how many of its bilabials the output lips close and of its open vowels it opens."""
    if not vis.get("lines"):
        return [f"<p><small>Viseme check: {e(vis['note'])}</small></p>"] if vis.get("note") else []
    parts = ["<h2>Visemes</h2><p><small>Output mouth (measured landmarks) at the dub's phonemes: lips closed "
             f"(gap &le; {vis['closed_max_iod']:g} inter-ocular) at p/b/m, open (&ge; {vis['open_min_iod']:g}) at open vowels.</small></p>",
             "<table><tr><th>line (s)</th><th>p/b/m closed</th><th>open vowels open</th><th>text</th></tr>"]
    for ln in vis["lines"]:
        b = f"{ln['n_bilabial_closed']}/{ln['n_bilabial']}" if ln["n_bilabial"] else "-"
        o = f"{ln['n_open_vowel_open']}/{ln['n_open_vowel']}" if ln["n_open_vowel"] else "-"
        parts.append(f"<tr><td>{ln['start_s']:.2f}-{ln['end_s']:.2f}</td><td>{b}</td><td>{o}</td><td>{e(ln.get('text', ''))}</td></tr>")
    parts.append("</table>")
    return parts


def _segments_table(d: dict, sync: dict, e) -> list[str]:
    """The per-segment table (timing, speed-up, sync, verdict, text)."""
    parts: list[str] = []
    tim = d.get("timing") or {}
    if tim.get("segments"):
        per_seg = {r["segment"]: r for r in sync.get("per_segment", [])}
        parts.append("<h2>Segments</h2><p><small>speed-up = TTS rate &times; stretch / natural speed (the TTS rate at which the voice "
                     "speaks the language at its natural rate); the limit applies to it. A line placed after its slot's start (delayed) "
                     "follows a line that overran.</small></p>"
                     "<table><tr><th>id</th><th>speaker</th><th>source slot (s)</th><th>placed (s)</th><th>TTS rate / natural</th><th>stretch</th>"
                     "<th>overrun (s)</th><th>overlap (s)</th><th>speed-up / limit</th><th>sync offset / corr.</th><th>verdict</th><th>text</th></tr>")
        for s in tim["segments"]:
            ps = per_seg.get(s["id"], {})
            sy = f"{ps['offset_frames']:+d} / {ps['peak_correlation']:.2f}" if ps.get("offset_frames") is not None else "-"
            placed = f"{s['placed_start_s']:.2f}-{s['placed_end_s']:.2f}" if s.get("placed_start_s") is not None else "-"
            if s.get("delayed_s"):
                placed += f"<br><small>delayed {s['delayed_s']:.2f} s</small>"
            reasons = "<br><small>" + e("; ".join(s["reasons"])) + "</small>" if s.get("reasons") else ""
            parts.append(f"<tr><td>{s['id']}</td><td>{e(s['speaker'])}</td><td>{s['start_s']:.2f}-{s['end_s']:.2f}</td><td>{placed}</td>"
                         f"<td>{_fmt(s.get('tts_rate'))} / {_fmt(s.get('natural_speed'))}</td><td>{_fmt(s['stretch_ratio'])}</td><td>{_fmt(s['overrun_s'])}</td><td>{_fmt(s['overlap_s'])}</td><td>{_fmt(s.get('speedup'))} / {_fmt(s.get('speedup_limit'))}</td><td>{sy}</td>"
                         f"<td>{_badge(s['verdict'])}{reasons}</td><td>{e(s['text'])}</td></tr>")
        parts.append("</table>")
    return parts


def _intelligibility_table(it: dict | None, e) -> list[str]:
    """The whole-dub figures and one row per line: what ASR heard, WER, verdict, re-syntheses."""
    if not it:
        return []
    parts = ["<h2>Intelligibility</h2>"]
    if it.get("dub_wer") is not None:
        parts.append(f"<p>Whole dub (dialogue stem, {e(str(it.get('model')))} forced to the language): WER {it['dub_wer']:.3f} "
                     f"against the subtitles; unforced detection {e(str(it.get('detected_language')))} (p {it['detected_probability']:.2f}), "
                     f"p(target) {it['language_probability']:.2f}.<br><small>heard: {e(it.get('dub_transcript') or '')}</small></p>")
    for k in ("dub_note", "lines_note"):
        if it.get(k):
            parts.append(f"<p><small>{e(it[k])}</small></p>")
    rows = it.get("lines") or []
    if rows:
        parts.append("<table><tr><th>id</th><th>speaker</th><th>text</th><th>heard</th><th>WER</th><th>verdict</th><th>re-syntheses</th></tr>")
        for r in rows:
            flag = " <b>flagged</b>" if r.get("flagged") else ""
            parts.append(f"<tr><td>{r['id']}</td><td>{e(r['speaker'])}</td><td>{e(r['text'])}</td><td>{e(r.get('heard') or '-')}</td>"
                         f"<td>{_fmt(r.get('wer'))}</td><td>{_badge(r['verdict'])}{flag}</td><td>{e(', '.join(r.get('remedies') or [])) or '-'}</td></tr>")
        parts.append("</table>")
    return parts


def _changes_table(ch: dict | None, e) -> list[str]:
    """What changed since the previous report of this dub."""
    parts: list[str] = []
    if ch:
        parts.append(f"<h2>Changes since the previous report</h2><p>verdict {e(str(ch['verdict']['before']))} &rarr; {e(str(ch['verdict']['after']))}</p>")
        if ch.get("checks") or ch.get("segments"):
            parts.append("<table><tr><th>what</th><th>before</th><th>after</th></tr>")
            for c in ch.get("checks", []):
                parts.append(f"<tr><td>{e(c['label'])}</td><td>{_fmt(c['before'])} ({e(str(c['verdict_before']))})</td><td>{_fmt(c['after'])} ({e(str(c['verdict_after']))})</td></tr>")
            for s in ch.get("segments", []):
                for k, v in s.items():
                    if k != "id":
                        parts.append(f"<tr><td>segment {s['id']}: {e(k)}</td><td>{_fmt(v['before'])}</td><td>{_fmt(v['after'])}</td></tr>")
            parts.append("</table>")
    return parts


def render_html(report: Report) -> str:
    """The whole page as one HTML string (images inline)."""
    d = report.data
    e = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>lipdub quality report: {e(d['output'].rsplit('/', 1)[-1])}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:1.5em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:14px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
        "th{background:#f2f2f2}.badge{color:#fff;padding:2px 8px;border-radius:4px;font-weight:bold}"
        ".verdict{font-size:28px;padding:14px 18px;border-radius:8px;color:#fff;margin:.5em 0}"
        "img.plot{max-width:100%;border:1px solid #ddd;margin:.4em 0}.thumbs figure{display:inline-block;margin:4px;text-align:center;font-size:12px}"
        "small{color:#555}</style></head><body>",
        f"<h1>Quality report</h1><p><b>{e(d['output'])}</b>" + (f"<br>source: {e(d['source'])}" if d.get("source") else "")
        + (f"<br>language: {e(d['language'])}" if d.get("language") else "") + f"<br>duration {d['duration_s']:.2f} s</p>",
        f"<div class='verdict' style='background:{COLOURS.get(d['verdict'], '#666')}'>Verdict: {e(d['verdict'].upper())}</div>",
    ]
    if d.get("reasons"):
        parts.append("<ul>" + "".join(f"<li>{e(r)}</li>" for r in d["reasons"]) + "</ul>")
    else:
        parts.append("<p>Every measured figure is within its pass threshold.</p>")
    # summary of the sync figures
    sync = d.get("sync") or {}
    if "dub" in sync:
        parts.append("<h2>Lip sync</h2><table><tr><th></th><th>AV offset (frames)</th><th>peak correlation</th><th>confidence</th><th>frames</th></tr>")
        for key, label in (("dub", "dub"), ("reference", "source reference"), ("floor", "floor (no lip-sync)")):
            s = sync.get(key)
            if s:
                parts.append(f"<tr><td>{label}</td><td>{s['offset_frames']:+d}</td><td>{s['peak_correlation']:.3f}</td><td>{s['confidence']:.3f}</td><td>{s['n_frames']}</td></tr>")
        parts.append("</table>")
    sn = d.get("syncnet") or {}
    if "lse_d" in sn:
        parts.append(f"<p>SyncNet: LSE-D {sn['lse_d']:.3f}, LSE-C {sn['lse_c']:.3f}, AV offset {sn['offset_frames']:+d} frames (25 fps), {sn['n_windows']} windows.</p>")
    elif sn.get("note"):
        parts.append(f"<p><small>SyncNet: {e(sn['note'])}</small></p>")
    parts.append("<h2>All figures</h2><table><tr><th>group</th><th>figure</th><th>value</th><th>unit</th><th>verdict</th><th>threshold</th><th>source of the threshold</th></tr>")
    for c in d.get("checks", []):
        note = f"<br><small>{e(c['note'])}</small>" if c.get("note") else ""
        parts.append(f"<tr><td>{e(c['group'])}</td><td>{e(c['label'])}{note}</td><td>{_fmt(c['value'])}</td><td>{e(c['unit'])}</td>"
                     f"<td>{_badge(c['verdict'])}</td><td>{e(c['threshold'])}</td><td><small>{e(c['source'])}</small></td></tr>")
    parts.append("</table>")
    for title, uri in (("Lip sync over lags", plot_sync_lags(sync)), ("Mouth opening and speech", plot_mouth_envelope(sync)),
                       ("SyncNet", plot_syncnet(sn)), ("Loudness", plot_loudness(d.get("audio"))),
                       ("Time-stretch per segment", plot_stretch(d.get("timing"), d.get("thresholds", {}))),
                       ("Voice similarity", plot_voice(d.get("voice"), d.get("thresholds", {}))),
                       ("Visual fidelity", plot_visual(d.get("visual")))):
        if uri:
            parts.append(f"<h3>{e(title)}</h3><img class='plot' alt='{e(title)}' src='{uri}'>")
    if report.thumbnails:
        parts.append("<h3>Frames with the worst sync</h3><div class='thumbs'>")
        wf = {w["frame"]: w for w in sync.get("worst_frames", [])}
        for f, t, png in report.thumbnails:
            lc = wf.get(f, {}).get("local_correlation")
            parts.append(f"<figure><img alt='frame {f}' src='{encode_png(png)}'><figcaption>frame {f}, {t:.2f} s"
                         + (f"<br>local corr. {lc:.2f}" if lc is not None else "") + "</figcaption></figure>")
        parts.append("</div><p><small>Lowest correlation (1 s window) between the measured mouth opening and the one predicted from the audio, during speech.</small></p>")
    parts += _visemes_table(d.get("visemes") or {}, e)
    parts += _segments_table(d, sync, e)
    parts += _intelligibility_table(d.get("intelligibility"), e)
    parts += _changes_table(d.get("changes"), e)
    parts.append("<p><small>Made by lipdub qc (DESIGN.md section 4). Thresholds are configurable with --thresholds FILE; report.json holds every figure.</small></p></body></html>")
    return "".join(parts)
