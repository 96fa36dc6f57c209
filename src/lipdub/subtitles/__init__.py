"""Subtitles: cues, per-language styling and layout, and the SRT / WebVTT / TTML writers.

* :class:`Cue` (:mod:`.cue`); :func:`write_srt`, :func:`write_vtt`, :func:`write_ttml` (:mod:`.writers`);
* :class:`SubtitleStyle`, :func:`style_for` (:mod:`.style`: Netflix TTSG line length, lines,
  reading speed per language);
* :func:`layout_cues`, :func:`check_cues` (:mod:`.layout`: split long cues at phrase boundaries,
  balanced line breaks, reading speed).
"""

from __future__ import annotations

from .cue import Cue
from .layout import CueViolation, break_lines, check_cues, layout_cues, split_text
from .style import SUBTITLE_STYLES, TEMPLATE_STYLE, SubtitleStyle, style_for
from .writers import write_srt, write_ttml, write_vtt

__all__ = ["Cue", "CueViolation", "SUBTITLE_STYLES", "SubtitleStyle", "TEMPLATE_STYLE", "break_lines", "check_cues",
           "layout_cues", "split_text", "style_for", "write_srt", "write_ttml", "write_vtt"]
