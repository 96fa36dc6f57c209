"""Loudness standards (ebu-r128, atsc-a85, streaming): resolution of names and explicit figures,
and a real mix normalised to each one meets it when measured (pyloudnorm, BS.1770-4)."""

from __future__ import annotations

import numpy as np
import pytest

from lipdub import loudness_standards as standards
from lipdub import mixing as mix_stage
from lipdub.errors import ConfigError


def test_table_has_the_standard_figures():
    t = standards.LOUDNESS_STANDARDS
    assert (t["ebu-r128"].target_lufs, t["ebu-r128"].max_true_peak_dbtp) == (-23.0, -1.0)
    assert (t["atsc-a85"].target_lufs, t["atsc-a85"].max_true_peak_dbtp) == (-24.0, -2.0)
    assert (t["streaming"].target_lufs, t["streaming"].max_true_peak_dbtp) == (-14.0, -1.0)


@pytest.mark.parametrize("standard, target, peak, expect", [
    (None, None, None, (-24.0, -2.0, "atsc-a85")),           # today's default
    ("ebu-r128", None, None, (-23.0, -1.0, "ebu-r128")),
    ("EBU-R128", -23.0, -1.0, (-23.0, -1.0, "ebu-r128")),    # the same figures again: no conflict
    ("ebu-r128", -23.4, -2.0, (-23.4, -2.0, "ebu-r128")),    # within +-0.5 LU and a stricter ceiling
    ("streaming", -16.0, None, (-16.0, -1.0, "streaming")),  # Apple's -16 within the 2 LU tolerance
    (None, -20.0, None, (-20.0, -2.0, None)),                # explicit figures, no standard
])
def test_resolve(standard, target, peak, expect):
    r = standards.resolve_loudness(standard, target, peak)
    assert (r.target_lufs, r.true_peak_dbtp, r.standard) == expect


@pytest.mark.parametrize("standard, target, peak", [
    ("ebu-r128", -16.0, None),   # target outside the standard's tolerance
    ("atsc-a85", -23.0, -1.0),   # ceiling above A/85's -2 dBTP
    ("streaming", -23.0, None),
    ("bbc", None, None),         # unknown name
    (None, 3.0, None),           # out of range
    (None, None, 1.0),
])
def test_conflicts_are_errors(standard, target, peak):
    with pytest.raises(ConfigError):
        standards.resolve_loudness(standard, target, peak)


@pytest.mark.parametrize("name", ["ebu-r128", "atsc-a85", "streaming"])
def test_mix_normalised_to_each_standard_complies(speech_and_music, name):
    speech, music = speech_and_music
    target = standards.resolve_loudness(name)
    res = mix_stage.mix([mix_stage.PlacedLine(0.5, speech[: 48000 * 6])], original=music, music_effects=music * 0.7,
                        source_dialogue=None, sample_rate_hz=48000, duck_spans_s=[(0.5, 6.5)],
                        target_lufs=target.target_lufs, true_peak_ceiling_dbtp=target.true_peak_dbtp)
    measured = mix_stage.integrated_loudness(res.mix, 48000)
    peak = mix_stage.true_peak_dbtp(res.mix, 48000)
    rep = standards.loudness_compliance(name, measured, peak)
    assert rep["compliant"], rep
    assert abs(rep["deviation_lu"]) <= 0.2 and peak <= target.true_peak_dbtp + 1e-6
    # the same mix measured against a standard it was not made for fails the loudness check
    other = {"ebu-r128": "streaming", "atsc-a85": "streaming", "streaming": "ebu-r128"}[name]
    assert not standards.loudness_compliance(other, measured, peak)["loudness_ok"]


def test_compliance_flags_hot_peaks_and_silence():
    rep = standards.loudness_compliance("atsc-a85", -24.1, -0.5)
    assert rep["loudness_ok"] and not rep["true_peak_ok"] and not rep["compliant"]
    assert not standards.loudness_compliance("ebu-r128", float("-inf"), -60.0)["loudness_ok"]
    with pytest.raises(ConfigError):
        standards.loudness_compliance("dolby", -24.0, -2.0)
    assert np.isfinite(standards.loudness_compliance("ebu-r128", -23.2, -1.5)["deviation_lu"])
