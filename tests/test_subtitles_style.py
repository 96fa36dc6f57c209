"""Subtitle styling and files: line length, two lines, reading speed on real transcript lines (the
pyannote sample's .stm, and its Apertium translations), phrase-boundary splits, and SRT / WebVTT /
TTML files read back by the ``srt``, ``webvtt-py`` and ``ttconv`` parsers."""

from __future__ import annotations

import logging
import math
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lipdub.errors import ConfigError
from lipdub.subtitles import Cue, SubtitleStyle, break_lines, check_cues, layout_cues, split_text, style_for, write_srt, write_ttml, write_vtt

FPS = 25


@pytest.fixture(scope="module")
def stm_cues(testdata) -> list[Cue]:
    """The pyannote sample's transcript lines, one cue per line at its own time."""
    cues = []
    for line in (testdata / "sp_en_2spk_pyannote_sample.stm").read_text().splitlines():
        f = line.split(maxsplit=5)
        cues.append(Cue(float(f[3]), float(f[4]), f[5].strip()))
    return cues


@pytest.fixture(scope="module")
def stm_turns(testdata) -> list[Cue]:
    """Consecutive lines of one speaker joined into one long cue (the long lines of a dub script)."""
    turns: list[tuple[str, float, float, str]] = []
    for line in (testdata / "sp_en_2spk_pyannote_sample.stm").read_text().splitlines():
        f = line.split(maxsplit=5)
        spk, a, b, text = f[2], float(f[3]), float(f[4]), f[5].strip()
        if turns and turns[-1][0] == spk:
            turns[-1] = (spk, turns[-1][1], b, turns[-1][3] + " " + text)
        else:
            turns.append((spk, a, b, text))
    return [Cue(a, b, t) for _, a, b, t in turns]


def _translate(cues: list[Cue], target: str) -> list[Cue]:
    if shutil.which("apertium") is None:
        pytest.skip("apertium not installed (scripts/setup.sh installs it)")
    from lipdub.backends.translate.apertium import ApertiumTranslator
    from lipdub.contracts.translate import TranslationRequest
    from lipdub.languages import parse_language

    tr = ApertiumTranslator()
    texts = tr.translate([TranslationRequest(c.text) for c in cues], parse_language("en"), parse_language(target))
    return [Cue(c.start_s, c.end_s, t) for c, t in zip(cues, texts)]


def _assert_layout_holds(src: list[Cue], out: list[Cue], style: SubtitleStyle) -> None:
    """Line limits always; reading speed and duration wherever the following silence allowed them."""
    gap = style.min_gap_frames / FPS
    assert out and all(c.text.strip() for c in out)
    for i, c in enumerate(out):
        lines = c.text.split("\n")
        assert len(lines) <= style.max_lines, c
        assert all(style.width(x) <= style.max_chars_per_line for x in lines), c
        if i + 1 < len(out):
            assert out[i + 1].start_s - c.end_s >= gap - 1e-6  # the frame gap
    speech_end = {}
    for c in src:  # which source cue each laid-out cue came from: the one its middle falls in
        for o in out:
            if c.start_s - 1e-6 <= (o.start_s + o.end_s) / 2 <= c.end_s + style.max_extension_s:
                speech_end.setdefault(id(o), c.end_s)
    bad = {(v.index, v.limit) for v in check_cues(out, style)}
    for i, c in enumerate(out):
        chars = style.width(c.text.replace("\n", ""))
        slow_enough = chars / (c.end_s - c.start_s) <= style.max_cps + 1e-6
        assert slow_enough == ((i, "cps") not in bad)
        if not slow_enough:  # too fast only where no more time was allowed
            nxt = out[i + 1].start_s - gap if i + 1 < len(out) else math.inf
            reach = max(speech_end[id(c)] + style.max_extension_s, c.start_s + style.min_duration_s)
            assert c.end_s >= min(nxt, reach) - 1e-6, (c, nxt, reach)


def test_netflix_limits_per_language():
    assert (style_for("es").max_chars_per_line, style_for("es").max_lines, style_for("es").max_cps) == (42, 2, 17.0)
    assert style_for("en").max_cps == 20.0 and style_for("pt-BR").language == "pt"
    assert style_for("ko").width("안녕 OK") == 2 + 0.5 * 3  # Latin letters and spaces count half
    assert style_for("ja").max_chars_per_line == 13 and style_for("zh").max_chars_per_line == 16
    assert style_for("es", max_cps=20).max_cps == 20
    with pytest.raises(ConfigError):
        style_for("es", max_colour=3)
    with pytest.raises(ConfigError):
        style_for("es", max_lines=0)


@pytest.mark.parametrize("language", ["en", "es", "ca"])
def test_real_lines_keep_the_limits(stm_cues, stm_turns, language):
    style = style_for(language)
    for cues in (stm_cues, stm_turns):
        src = cues if language == "en" else _translate(cues, language)
        out = layout_cues(src, style, fps=FPS)
        _assert_layout_holds(src, out, style)
        assert "".join("".join(c.text for c in out).split()) == "".join(" ".join(c.text for c in src).split())  # no word lost or added


def test_long_line_splits_at_the_sentence_end_then_commas(stm_turns):
    style = style_for("en")
    turn = next(c for c in stm_turns if c.text.startswith("Well, there isn't"))
    parts = split_text(turn.text, turn.end_s - turn.start_s, style)
    assert len(parts) == 2 and parts[0].endswith("difference.")  # the sentence boundary, not the middle word
    out = layout_cues([turn], style, fps=FPS)
    assert [c.text.replace("\n", " ") for c in out] == parts
    # the cue's time is shared in proportion to characters
    share = (out[1].start_s - turn.start_s) / (turn.end_s - turn.start_s)
    assert share == pytest.approx(len(parts[0]) / (len(parts[0]) + len(parts[1])), abs=0.02)


def test_clause_split_and_balanced_breaks_without_punctuation():
    style = style_for("en")
    text = ("I went down to the market this morning and I bought bread for the whole family "
            "because nobody else had time to go")
    parts = split_text(text, 6.0, style)
    assert len(parts) == 2 and parts[1].startswith(("and ", "because "))  # before a conjunction
    lines = break_lines("nobody else had any time to go down to the market", style)
    assert len(lines) == 2 and abs(len(lines[0]) - len(lines[1])) <= 12
    assert not lines[0].lower().endswith((" the", " a", " an"))  # never an article left at the end of a line
    assert break_lines("short line", style) == ["short line"]


def test_chinese_lines_break_between_characters():
    style = style_for("zh")
    text = "我们今天早上去了市场，买了很多新鲜的水果和蔬菜，然后一起回家做饭。"
    out = layout_cues([Cue(0.0, 8.0, text)], style, fps=FPS)
    assert all(len(x) <= 16 for c in out for x in c.text.split("\n"))
    assert "".join(c.text.replace("\n", "") for c in out) == text


def test_long_cue_over_seven_seconds_is_split(stm_turns):
    style = style_for("en")
    out = layout_cues([Cue(0.0, 12.0, "Oh, I'm originally from Chicago also. I'm in New Jersey now though.")], style, fps=FPS)
    assert len(out) >= 2 and all(c.end_s - c.start_s <= style.max_duration_s for c in out)


def test_files_validate_with_their_parsers(stm_turns, tmp_path, caplog):
    import srt
    import webvtt

    style = style_for("es")
    cues = layout_cues(_translate(stm_turns, "es"), style, fps=FPS)
    s = write_srt(cues, tmp_path / "es.srt")
    parsed = list(srt.parse(s.read_text(encoding="utf-8")))
    assert [p.content for p in parsed] == [c.text for c in cues]
    for p_, c in zip(parsed, cues):
        assert p_.start.total_seconds() == pytest.approx(c.start_s, abs=0.0011)
        assert p_.end.total_seconds() == pytest.approx(c.end_s, abs=0.0011)
    v = write_vtt(cues, tmp_path / "es.vtt")
    caps = webvtt.read(str(v))
    assert [c.text for c in caps] == [c.text for c in cues]
    for cap, c in zip(caps, cues):
        assert _seconds(cap.start) == pytest.approx(c.start_s, abs=0.0011)
        assert _seconds(cap.end) == pytest.approx(c.end_s, abs=0.0011)
    t = write_ttml(cues, tmp_path / "es.ttml", language="es", title="sample")
    _check_ttml(t, cues, caplog)


def _seconds(clock: str) -> float:
    h, m, sec = clock.split(":")
    return int(h) * 3600 + int(m) * 60 + float(sec)


def _check_ttml(path: Path, cues: list[Cue], caplog) -> None:
    """Read with ttconv's IMSC reader (no error or warning logged), convert to SRT with ttconv and
    compare times and lines with the cues."""
    import srt
    from ttconv.imsc import reader
    from ttconv.srt import writer

    root = ET.parse(str(path)).getroot()
    assert root.tag == "{http://www.w3.org/ns/ttml}tt"
    assert root.get("{http://www.w3.org/ns/ttml#parameter}profile") == "http://www.w3.org/ns/ttml/profile/imsc1/text"
    with caplog.at_level(logging.WARNING):
        caplog.clear()
        doc = reader.to_model(ET.parse(str(path)))
        assert doc is not None
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [r.getMessage() for r in caplog.records]
    assert doc.get_lang() == "es"
    back = list(srt.parse(writer.from_model(doc)))
    assert len(back) == len(cues)
    for b, c in zip(back, cues):
        assert b.start.total_seconds() == pytest.approx(c.start_s, abs=0.0011)
        assert b.end.total_seconds() == pytest.approx(c.end_s, abs=0.0011)
        assert b.content.split("\n") == c.text.split("\n")


def test_ttml_escapes_markup_characters(tmp_path, caplog):
    cues = [Cue(1.0, 2.5, "Tom & Jerry <live>\n\"quoted\" line"), Cue(3.0, 4.0, "second")]
    path = write_ttml(cues, tmp_path / "x.ttml", language="en")
    root = ET.parse(str(path)).getroot()
    ps = root.findall(".//{http://www.w3.org/ns/ttml}p")
    assert ps[0].text == "Tom & Jerry <live>" and ps[0][0].tail == "\"quoted\" line"
    doc_cues = [Cue(1.0, 2.5, "Tom & Jerry <live>\n\"quoted\" line"), Cue(3.0, 4.0, "second")]
    caplog.clear()
    from ttconv.imsc import reader

    with caplog.at_level(logging.WARNING):
        assert reader.to_model(ET.parse(str(path))) is not None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(doc_cues) == len(ps)
