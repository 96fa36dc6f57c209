"""Subtitle files: SRT (``srt`` package), WebVTT (``webvtt-py``) and TTML (IMSC1 text profile).

The TTML document follows the IMSC 1.0.1 Text Profile (W3C Recommendation, 2018; designator
``http://www.w3.org/ns/ttml/profile/imsc1/text``), the form broadcasters and Netflix take
(the Netflix TTSG General Requirements ask for TTML1/IMSC1): media time base, clock-time
expressions with milliseconds, one bottom region in percentages, one ``<p>`` per cue and ``<br/>``
between its lines.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

from .cue import Cue

MIN_CUE_S = 0.2
TT_NS = "http://www.w3.org/ns/ttml"
TTP_NS = "http://www.w3.org/ns/ttml#parameter"
TTS_NS = "http://www.w3.org/ns/ttml#styling"
TTM_NS = "http://www.w3.org/ns/ttml#metadata"
XML_NS = "http://www.w3.org/XML/1998/namespace"
IMSC1_TEXT_PROFILE = "http://www.w3.org/ns/ttml/profile/imsc1/text"


def _kept(cues: list[Cue]) -> list[Cue]:
    return sorted((c for c in cues if c.text.strip()), key=lambda c: c.start_s)


def write_srt(cues: list[Cue], path: str | os.PathLike) -> Path:
    """Write an SRT file (UTF-8), cues sorted by start, empty texts dropped."""
    import srt

    subs = [
        srt.Subtitle(index=i + 1, start=timedelta(seconds=c.start_s), end=timedelta(seconds=max(c.end_s, c.start_s + MIN_CUE_S)),
                     content=c.text.strip())
        for i, c in enumerate(_kept(cues))
    ]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(srt.compose(subs), encoding="utf-8")
    return path


def write_vtt(cues: list[Cue], path: str | os.PathLike) -> Path:
    """Write a WebVTT file (UTF-8) through webvtt-py."""
    import webvtt

    vtt = webvtt.WebVTT()
    for c in _kept(cues):
        vtt.captions.append(webvtt.Caption(_ts(c.start_s), _ts(max(c.end_s, c.start_s + MIN_CUE_S)), c.text.strip()))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    vtt.save(str(path))
    return path


def write_ttml(cues: list[Cue], path: str | os.PathLike, *, language: str, title: str | None = None) -> Path:
    """Write a TTML document in the IMSC1 text profile (UTF-8).

    Args:
        cues: the cues; ``"\\n"`` in a text becomes ``<br/>``.
        language: BCP 47 tag of the text (``"es"``), the document's ``xml:lang``.
        title: ``ttm:title`` of the document (None: none).
    """
    for prefix, ns in (("", TT_NS), ("ttp", TTP_NS), ("tts", TTS_NS), ("ttm", TTM_NS)):
        ET.register_namespace(prefix, ns)
    tt = ET.Element(f"{{{TT_NS}}}tt", {f"{{{XML_NS}}}lang": language, f"{{{TTP_NS}}}timeBase": "media",
                                        f"{{{TTP_NS}}}profile": IMSC1_TEXT_PROFILE, f"{{{TTP_NS}}}cellResolution": "32 15"})
    head = ET.SubElement(tt, f"{{{TT_NS}}}head")
    if title:
        ET.SubElement(ET.SubElement(head, f"{{{TT_NS}}}metadata"), f"{{{TTM_NS}}}title").text = title
    styling = ET.SubElement(head, f"{{{TT_NS}}}styling")
    ET.SubElement(styling, f"{{{TT_NS}}}style", {
        f"{{{XML_NS}}}id": "s_default", f"{{{TTS_NS}}}fontFamily": "proportionalSansSerif", f"{{{TTS_NS}}}fontSize": "100%",
        f"{{{TTS_NS}}}lineHeight": "125%", f"{{{TTS_NS}}}color": "#FFFFFF", f"{{{TTS_NS}}}textAlign": "center",
        f"{{{TTS_NS}}}textOutline": "#000000 5%"})
    layout = ET.SubElement(head, f"{{{TT_NS}}}layout")
    ET.SubElement(layout, f"{{{TT_NS}}}region", {
        f"{{{XML_NS}}}id": "r_bottom", f"{{{TTS_NS}}}origin": "10% 10%", f"{{{TTS_NS}}}extent": "80% 80%",
        f"{{{TTS_NS}}}displayAlign": "after"})
    body = ET.SubElement(tt, f"{{{TT_NS}}}body", {"region": "r_bottom", "style": "s_default"})
    div = ET.SubElement(body, f"{{{TT_NS}}}div")
    for i, c in enumerate(_kept(cues)):
        p = ET.SubElement(div, f"{{{TT_NS}}}p", {f"{{{XML_NS}}}id": f"c{i + 1}", "begin": _ts(c.start_s),
                                                  "end": _ts(max(c.end_s, c.start_s + MIN_CUE_S))})
        lines = [x.strip() for x in c.text.strip().split("\n")]
        p.text = lines[0]
        for line in lines[1:]:
            ET.SubElement(p, f"{{{TT_NS}}}br").tail = line
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(tt).write(str(path), encoding="utf-8", xml_declaration=True)
    return path


def _ts(t_s: float) -> str:
    ms = int(round(max(t_s, 0.0) * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"
