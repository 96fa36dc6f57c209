"""Per-language subtitle styling: line length, lines per cue, reading speed, durations, gaps.

Figures from the Netflix Timed Text Style Guides (TTSG, partnerhelp.netflixstudios.com):

* General Requirements and the English Template TTSG: at most 2 lines; 42 characters per line;
  a cue lasts 5/6 s to 7 s; at least 2 frames between cues; the out-time may run up to 12 frames
  past the end of the speech; line breaks after punctuation, before conjunctions, before
  prepositions, never between an article and its noun. Reading speed for translated (template
  based) adult programmes: 17 characters per second (children's: 13).
* English TTSG (English subtitles of English programmes, adult): up to 20 characters per second.
* Korean: 16 characters per line, Latin letters, spaces and punctuation count half; Simplified
  and Traditional Chinese: 16 characters per line; Japanese: 13 full-width characters per line
  (horizontal), half-width characters count half.
* Reading speeds of Japanese (4 cps), Korean (12 cps) and Chinese (9 cps) as compiled from the
  language TTSGs by a third-party summary (sublingo.cc "subtitle specs by language"); the TTSG pages
  themselves were not at hand to check these three.

Languages not in :data:`SUBTITLE_STYLES` get the template style (42 characters, 17 cps), which the
TTSG family uses for the Latin, Cyrillic, Greek and most other alphabetic scripts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import ConfigError


@dataclass(frozen=True)
class SubtitleStyle:
    """Layout limits of one language's subtitles.

    Attributes:
        language: ISO 639-1 code the style is for (``"*"``: the template).
        max_chars_per_line: line width limit, in characters as counted by :meth:`width`.
        max_lines: lines per cue.
        max_cps: reading speed limit, characters (as counted by :meth:`width`, line break not
            counted) per second of display.
        min_duration_s / max_duration_s: how long one cue may stay on screen, seconds.
        min_gap_frames: frames kept free between two cues.
        max_extension_s: how far a cue's out-time may run past the speech (into silence) to meet
            the reading speed, seconds (12 frames at 24 fps).
        halfwidth_weight: how much a half-width (non East Asian wide) character counts (0.5 for
            Japanese and Korean, 1 elsewhere).
        word_separator: ``" "`` for scripts that space words; ``""`` for Chinese and Japanese,
            whose lines break between any two characters.
    """

    language: str = "*"
    max_chars_per_line: int = 42
    max_lines: int = 2
    max_cps: float = 17.0
    min_duration_s: float = 5 / 6
    max_duration_s: float = 7.0
    min_gap_frames: int = 2
    max_extension_s: float = 0.5
    halfwidth_weight: float = 1.0
    word_separator: str = " "

    def __post_init__(self) -> None:
        if self.max_chars_per_line < 4 or self.max_lines < 1 or self.max_cps <= 0:
            raise ConfigError(f"subtitle style {self.language}: limits must be positive",
                              "use at least 4 characters per line, 1 line and a reading speed above 0")
        if not 0 < self.min_duration_s <= self.max_duration_s:
            raise ConfigError(f"subtitle style {self.language}: min duration {self.min_duration_s} s above max {self.max_duration_s} s",
                              "use min_duration_s <= max_duration_s")

    def width(self, text: str) -> float:
        """Width of ``text`` in the style's characters: East Asian wide / full-width characters
        (``unicodedata.east_asian_width`` W or F) count 1, others ``halfwidth_weight``."""
        import unicodedata

        if self.halfwidth_weight == 1.0:
            return float(len(text))
        return float(sum(1.0 if unicodedata.east_asian_width(c) in ("W", "F") else self.halfwidth_weight for c in text))


TEMPLATE_STYLE = SubtitleStyle()
SUBTITLE_STYLES: dict[str, SubtitleStyle] = {
    "en": replace(TEMPLATE_STYLE, language="en", max_cps=20.0),
    "ja": replace(TEMPLATE_STYLE, language="ja", max_chars_per_line=13, max_cps=4.0, halfwidth_weight=0.5, word_separator=""),
    "ko": replace(TEMPLATE_STYLE, language="ko", max_chars_per_line=16, max_cps=12.0, halfwidth_weight=0.5),
    "zh": replace(TEMPLATE_STYLE, language="zh", max_chars_per_line=16, max_cps=9.0, word_separator=""),
}


def style_for(language: str, **overrides) -> SubtitleStyle:
    """The style of ``language`` (ISO 639-1, e.g. ``"es"``; a region suffix ``"pt-BR"`` is
    ignored), with ``overrides`` (field=value) on top.

    Raises:
        ConfigError: an unknown field in ``overrides`` or a limit out of range.
    """
    code = str(language).split("-")[0].split("_")[0].lower()
    base = SUBTITLE_STYLES.get(code, replace(TEMPLATE_STYLE, language=code))
    try:
        return replace(base, **overrides)
    except TypeError as exc:
        raise ConfigError(f"unknown subtitle style option ({exc})", f"use fields of SubtitleStyle: {', '.join(SubtitleStyle.__dataclass_fields__)}") from None
