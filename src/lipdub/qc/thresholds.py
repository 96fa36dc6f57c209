"""Pass / warn / fail thresholds of the quality report (DESIGN.md section 4).

Each figure of the report is judged by a :class:`Threshold`: a figure on the good side of ``pass_at``
passes, one between ``pass_at`` and ``warn_at`` warns, one beyond ``warn_at`` fails (``warn_at`` None:
the figure can only pass or warn). Every default names its source; where no published figure exists
the default is marked as a project choice. Override any of them with ``lipdub qc --thresholds FILE``
(TOML or JSON with the field names below, e.g. ``[lse_d] pass_at = 7.5``), or in the Python API with
:meth:`Thresholds.load`.
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ConfigError

Verdict = Literal["pass", "warn", "fail", "n/a"]
VERDICT_ORDER = {"n/a": 0, "pass": 1, "warn": 2, "fail": 3}


class Threshold(BaseModel):
    """How one figure is judged.

    Attributes:
        pass_at: the limit a passing figure must reach (inclusive).
        warn_at: the limit of a warning (inclusive); beyond it the figure fails. None: never fails.
        higher_is_better: True when larger figures are better (SSIM), False otherwise (LSE-D).
        unit: the unit of the figure (``frames``, ``dB``, ``LU``, ...).
        source: where the default comes from (paper, standard, or "project choice").
    """

    model_config = ConfigDict(extra="forbid")

    pass_at: float
    warn_at: float | None = None
    higher_is_better: bool = True
    unit: str = ""
    source: str = ""

    def judge(self, value: float | None) -> Verdict:
        """``pass``/``warn``/``fail`` for ``value``; ``n/a`` when it is None or NaN."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "n/a"
        good = (lambda v, lim: v >= lim) if self.higher_is_better else (lambda v, lim: v <= lim)
        if good(value, self.pass_at):
            return "pass"
        if self.warn_at is None or good(value, self.warn_at):
            return "warn"
        return "fail"

    def describe(self) -> str:
        """A short text such as ``>= 0.85 pass, >= 0.75 warn``."""
        op = ">=" if self.higher_is_better else "<="
        s = f"{op} {self.pass_at:g} pass"
        if self.warn_at is not None:
            s += f", {op} {self.warn_at:g} warn, else fail"
        else:
            s += ", else warn"
        return s


def _t(pass_at, warn_at, higher, unit, source) -> Threshold:
    return Threshold(pass_at=pass_at, warn_at=warn_at, higher_is_better=higher, unit=unit, source=source)


class Thresholds(BaseModel):
    """All thresholds of the report, with documented defaults (see each field's ``source``)."""

    model_config = ConfigDict(extra="forbid")

    sync_offset_frames: Threshold = _t(
        1, 2, False, "frames",
        "|AV offset|; ITU-R BT.1359-1: sound more than 45 ms early or 125 ms late is detectable; 1 frame = 40 ms at 25 fps")
    sync_min_confidence: Threshold = _t(
        0.10, 0.05, True, "correlation",
        "project choice: landmark sync confidence (peak minus median over lags); below it the offset is not measurable")
    sync_confidence_over_floor: Threshold = _t(
        0.10, None, True, "correlation",
        "project choice: dub confidence minus the floor's (source video + dub audio: the untouched mouth shares only the "
        "speech/silence timing with the dub); below it the dub's offset is not trusted and is not judged")
    sync_vs_floor: Threshold = _t(
        0.0, -0.10, True, "correlation",
        "project choice: dub peak correlation minus the no-lip-sync floor's (the lip-sync must not make sync worse)")
    viseme_bilabial_closed: Threshold = _t(
        0.80, 0.60, True, "share of p/b/m",
        "issue 15: the output lips closed (inner-lip gap <= 0.035 inter-ocular) at >= 80 % of the dub's bilabials; warn limit: project choice")
    viseme_open_vowel_open: Threshold = _t(
        0.70, 0.50, True, "share of open vowels",
        "project choice: the output mouth open (>= 0.07 inter-ocular) at the dub's open vowels (a, e, o, ...)")
    lse_d: Threshold = _t(7.0, 8.0, False, "distance",
                          "LSE-D seed figure < 7.0 (Prajwal et al., Wav2Lip, ACM MM 2020, Table 1: real LRS2 videos 6.7); warn limit: project choice")
    lse_c: Threshold = _t(7.5, 5.0, True, "distance",
                          "LSE-C seed figure > 7.5 (Wav2Lip, ACM MM 2020, Table 1: real LRS2 videos 7.8); warn limit: project choice")
    syncnet_offset_frames: Threshold = _t(1, 2, False, "frames", "as sync_offset_frames (ITU-R BT.1359-1)")
    ssim: Threshold = _t(0.85, 0.75, True, "SSIM",
                         "seed figure SSIM > 0.85 (whole frame against the source; Wang et al. 2004 SSIM); warn limit: project choice")
    ssim_outside_mouth: Threshold = _t(0.95, 0.90, True, "SSIM",
                                       "project choice: outside the mouth only the re-encode may differ (x264 crf 17 is visually lossless)")
    psnr_outside_mouth_db: Threshold = _t(35.0, 30.0, True, "dB",
                                          "project choice: 35 dB is a common 'visually lossless' PSNR for 8-bit video")
    vmaf: Threshold = _t(85.0, 70.0, True, "VMAF",
                         "seed figure VMAF > 85 (Netflix vmaf_v0.6.1; ~80-100 'good' to 'excellent'); warn limit: project choice")
    loudness_error_lu: Threshold = _t(
        1.0, 2.0, False, "LU",
        "|integrated - target|; target -24 LUFS (ATSC A/85) or -23 (EBU R128); EBU R128 allows +-1 LU where exact normalisation is impractical")
    true_peak_dbtp: Threshold = _t(-1.0, 0.0, False, "dBTP", "EBU R128: maximum permitted true peak -1 dBTP; above 0 dBTP the signal clips")
    loudness_range_lu: Threshold = _t(20.0, None, False, "LU", "EBU Tech 3343: LRA above ~20 LU is uncomfortable for home viewing (warn only)")
    clipped_share: Threshold = _t(0.0, 1e-4, False, "share of samples",
                                  "project choice: no sample at full scale (|x| >= 0.999); up to 0.01 % warns")
    voice_similarity: Threshold = _t(0.75, 0.60, True, "cosine",
                                     "project choice for resemblyzer GE2E d-vectors (Wan et al. 2018): same-speaker pairs usually score "
                                     "above 0.75; a generic TTS voice, not a clone, scores lower")
    stretch_ratio: Threshold = _t(1.25, 1.40, False, "ratio",
                                  "DESIGN.md section 4: speech fits without a stretch above 1.25; warn limit: project choice")
    overrun_s: Threshold = _t(0.05, 0.30, False, "s", "project choice: speech running past its slot by more than 0.3 s is heard over the next shot/line")
    overlap_s: Threshold = _t(0.0, 0.05, False, "s", "project choice: two dubbed lines must not overlap")
    fit_share: Threshold = _t(0.90, 0.75, True, "share of segments",
                              "DESIGN.md section 4: share of speech fitted without a stretch above the limit; limits: project choice")
    subtitle_outside_s: Threshold = _t(0.0, 0.5, False, "s", "project choice: subtitle cues must lie inside the video")
    line_wer: Threshold = _t(0.25, 0.5, False, "WER",
                             "project choice: word error rate of ASR (Whisper, forced to the target language) on one dubbed line "
                             "against its text; a short line makes one word a large share (1 of 4 words = 0.25). Above the pass "
                             "limit the synthesize step re-synthesizes the line (lipdub.pipeline.hearing)")
    dub_wer: Threshold = _t(0.15, 0.30, False, "WER",
                            "issue 14: the dub's dialogue stem heard by Whisper base against the dub's own subtitles, WER <= 0.15; "
                            "warn limit: project choice")
    dub_language_p: Threshold = _t(0.90, 0.70, True, "probability",
                                   "issue 14: Whisper's unforced language identification on the dialogue stem gives the target "
                                   "language p >= 0.9; warn limit: project choice")

    @classmethod
    def load(cls, path: str | Path | None) -> "Thresholds":
        """Defaults, overridden by the TOML or JSON file ``path`` (only the fields it names).

        Raises:
            ConfigError: the file is missing, unreadable, or names an unknown threshold or field.
        """
        if path is None:
            return cls()
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"thresholds file {path} does not exist", "check the --thresholds path")
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"thresholds file {path} cannot be parsed: {exc}", "write TOML (.toml) or JSON") from exc
        merged = cls().model_dump()
        for name, fields in data.items():
            if name not in merged or not isinstance(fields, dict):
                raise ConfigError(f"thresholds file {path}: unknown threshold {name!r}",
                                  f"use one of {', '.join(sorted(merged))}, each a table of pass_at / warn_at")
            merged[name].update(fields)
            merged[name]["source"] = f"user file {path.name}"
        try:
            return cls.model_validate(merged)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ConfigError(f"thresholds file {path}: {'.'.join(map(str, first['loc']))}: {first['msg']}",
                              "each threshold takes pass_at, warn_at, higher_is_better, unit") from exc


def worst(verdicts) -> Verdict:
    """The worst of several verdicts (``fail`` > ``warn`` > ``pass`` > ``n/a``)."""
    out: Verdict = "n/a"
    for v in verdicts:
        if VERDICT_ORDER[v] > VERDICT_ORDER[out]:
            out = v
    return out
