"""Loudness delivery standards: the targets people pick, by the standard that names them.

:data:`LOUDNESS_STANDARDS` (``ebu-r128``, ``atsc-a85``, ``streaming``); :func:`resolve_loudness`
turns a standard name and/or explicit figures into the mix's target and ceiling (default: ATSC A/85,
-24 LUFS / -2 dBTP), and :func:`loudness_compliance` checks measured figures against a standard for
the quality report. The mix itself (:mod:`lipdub.mixing`) normalizes to the target and limits the
true peak to the ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError


@dataclass(frozen=True)
class LoudnessStandard:
    """A loudness delivery standard.

    Attributes:
        name: the name used by the config / CLI (``--loudness-standard NAME``).
        target_lufs: integrated programme loudness target, LUFS (= LKFS), ITU-R BS.1770-4 gated.
        tolerance_lu: the largest deviation from ``target_lufs`` the standard accepts, LU; an
            explicit ``--loudness`` within it is a valid override, outside it a conflict.
        max_true_peak_dbtp: the highest true peak the standard permits, dBTP; an explicit
            ``--true-peak`` at or below it (stricter) is a valid override, above it a conflict.
        reference: the document the figures come from.
    """

    name: str
    target_lufs: float
    tolerance_lu: float
    max_true_peak_dbtp: float
    reference: str


LOUDNESS_STANDARDS: dict[str, LoudnessStandard] = {
    s.name: s
    for s in (
        LoudnessStandard("ebu-r128", -23.0, 0.5, -1.0,
                         "EBU R 128 (2020): programme loudness -23.0 LUFS, permitted deviation generally +-0.5 LU, "
                         "maximum permitted true peak -1 dBTP (EBU Tech 3343 for production)"),
        LoudnessStandard("atsc-a85", -24.0, 2.0, -2.0,
                         "ATSC A/85:2013 (US broadcast, CALM Act): target -24 LKFS, +-2 dB operating tolerance, "
                         "true peak no higher than -2 dBTP"),
        # -14 LUFS is the playback reference of YouTube and Spotify (Spotify asks for true peaks
        # below -1 dBTP); Apple Music and podcasts use -16. Normalising players turn louder
        # programmes down but YouTube does not turn quieter ones up, so -14 loses nothing on
        # either; -16 (Apple) is accepted as an explicit --loudness within the 2 LU tolerance.
        LoudnessStandard("streaming", -14.0, 2.0, -1.0,
                         "streaming platforms: -14 LUFS (YouTube, Spotify playback normalisation), -1 dBTP "
                         "(Spotify mastering advice); -16 LUFS (Apple Music, AES TD1004 for streaming) within tolerance"),
    )
}
DEFAULT_LOUDNESS_STANDARD = "atsc-a85"  # lipdub's historical default: -24 LUFS / -2 dBTP
# Kept for callers of the short names; the typed table above is the reference.
LOUDNESS_PRESETS_LUFS = {"atsc": -24.0, "ebu": -23.0, "web": -16.0}


@dataclass(frozen=True)
class LoudnessTarget:
    """What the mix aims at: ``target_lufs`` and ``true_peak_dbtp`` (ceiling), and the standard they
    come from (None for explicit figures with no standard named)."""

    target_lufs: float
    true_peak_dbtp: float
    standard: str | None


def loudness_standard(name: str) -> LoudnessStandard:
    """The standard called ``name`` (case-insensitive).

    Raises:
        ConfigError: unknown name (the hint lists the known ones).
    """
    std = LOUDNESS_STANDARDS.get(str(name).strip().lower())
    if std is None:
        raise ConfigError(f"unknown loudness standard {name!r}", f"use one of {', '.join(LOUDNESS_STANDARDS)}")
    return std


def resolve_loudness(standard: str | None = None, target_lufs: float | None = None,
                     true_peak_dbtp: float | None = None) -> LoudnessTarget:
    """The loudness target and ceiling from a standard name and/or explicit figures (None: not given).

    * nothing given: the default standard (``atsc-a85``: -24 LUFS, -2 dBTP);
    * only figures: those figures (a missing one from the default standard), ``standard=None``;
    * a standard: its figures; an explicit ``target_lufs`` within the standard's tolerance or an
      explicit ``true_peak_dbtp`` at or below its maximum overrides them (still compliant).

    Raises:
        ConfigError: unknown standard; a figure out of range (-70..-5 LUFS, -20..0 dBTP); an
            explicit figure that conflicts with the named standard (outside its tolerance, or a
            ceiling above its maximum true peak), never silently ignored.
    """
    if target_lufs is not None and not -70 <= target_lufs <= -5:
        raise ConfigError(f"--loudness {target_lufs:g} LUFS is out of range", "use a loudness target from -70 to -5 LUFS (e.g. -24 or -23)")
    if true_peak_dbtp is not None and not -20 <= true_peak_dbtp <= 0:
        raise ConfigError(f"--true-peak {true_peak_dbtp:g} dBTP is out of range", "use a true-peak ceiling from -20 to 0 dBTP (e.g. -2)")
    if standard is None:
        default = LOUDNESS_STANDARDS[DEFAULT_LOUDNESS_STANDARD]
        if target_lufs is None and true_peak_dbtp is None:
            return LoudnessTarget(default.target_lufs, default.max_true_peak_dbtp, default.name)
        return LoudnessTarget(default.target_lufs if target_lufs is None else float(target_lufs),
                              default.max_true_peak_dbtp if true_peak_dbtp is None else float(true_peak_dbtp), None)
    std = loudness_standard(standard)
    if target_lufs is not None and abs(target_lufs - std.target_lufs) > std.tolerance_lu + 1e-9:
        raise ConfigError(
            f"--loudness {target_lufs:g} LUFS conflicts with --loudness-standard {std.name} "
            f"({std.target_lufs:g} LUFS +-{std.tolerance_lu:g} LU)",
            "drop one of the two, or pick the standard that has that target")
    if true_peak_dbtp is not None and true_peak_dbtp > std.max_true_peak_dbtp + 1e-9:
        raise ConfigError(
            f"--true-peak {true_peak_dbtp:g} dBTP conflicts with --loudness-standard {std.name} "
            f"(true peak at most {std.max_true_peak_dbtp:g} dBTP)",
            f"use a ceiling of {std.max_true_peak_dbtp:g} dBTP or lower, or drop --true-peak")
    return LoudnessTarget(std.target_lufs if target_lufs is None else float(target_lufs),
                          std.max_true_peak_dbtp if true_peak_dbtp is None else float(true_peak_dbtp), std.name)


def loudness_compliance(standard: str, integrated_lufs: float, true_peak_dbtp: float) -> dict:
    """Measured figures against a standard, for the quality report's ``audio.loudness_standard``.

    Returns:
        ``{"standard", "reference", "target_lufs", "tolerance_lu", "max_true_peak_dbtp",
        "integrated_lufs", "true_peak_dbtp", "deviation_lu", "loudness_ok", "true_peak_ok",
        "compliant"}`` (floats rounded to 0.01; ``loudness_ok`` false for silence, -inf LUFS).

    Raises:
        ConfigError: unknown standard.
    """
    std = loudness_standard(standard)
    finite = bool(np.isfinite(integrated_lufs))
    deviation = float(integrated_lufs - std.target_lufs) if finite else float("-inf")
    loud_ok = finite and abs(deviation) <= std.tolerance_lu
    peak_ok = bool(true_peak_dbtp <= std.max_true_peak_dbtp)
    return {"standard": std.name, "reference": std.reference, "target_lufs": std.target_lufs,
            "tolerance_lu": std.tolerance_lu, "max_true_peak_dbtp": std.max_true_peak_dbtp,
            "integrated_lufs": round(float(integrated_lufs), 2) if finite else integrated_lufs,
            "true_peak_dbtp": round(float(true_peak_dbtp), 2), "deviation_lu": round(deviation, 2) if finite else deviation,
            "loudness_ok": loud_ok, "true_peak_ok": peak_ok, "compliant": loud_ok and peak_ok}
