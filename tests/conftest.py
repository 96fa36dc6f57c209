"""Shared fixtures: the real test clips of ../shared/testdata (or $LIPDUB_TESTDATA), speech over music
made from them, the embedded apertium translator and the espeak-ng TTS."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTDATA = Path(os.environ.get("LIPDUB_TESTDATA", REPO.parent / "shared" / "testdata"))


@pytest.fixture(scope="session")
def testdata() -> Path:
    """Directory of the shared test clips; tests are skipped with a clear reason when it is absent."""
    if not TESTDATA.is_dir():
        pytest.skip(f"test clips not found at {TESTDATA}; set LIPDUB_TESTDATA")
    return TESTDATA


#: Tests that need the apertium binary (the ``apertium`` fixture also skips without the en-es pair).
needs_apertium = pytest.mark.skipif(shutil.which("apertium") is None, reason="apertium is not installed")


@pytest.fixture(scope="module")
def speech_and_music(testdata):
    """Speech (JFK) and music (hallo_4), float32 at 48 kHz, cut to the same length (about 11 s):
    speech mono ``(n,)``, music as read (stereo ``(n, 2)``)."""
    from lipdub.audio import read_audio, resample

    speech, sr = read_audio(testdata / "sp_en_jfk.flac", mono=True)
    speech = resample(speech, sr, 48000)
    music, sr2 = read_audio(testdata / "mu_hallo_4.wav")
    music = resample(music, sr2, 48000)
    n = min(len(speech), len(music))
    return speech[:n], music[:n]


@pytest.fixture(scope="module")
def espeak():
    """The espeak-ng TTS backend (``TTS_BACKENDS``); skipped, with the backend's reason, when its library
    is not usable here (scripts/setup.sh installs it)."""
    from lipdub.contracts.synthesize import TTS_BACKENDS
    from lipdub.errors import BackendUnavailable

    tts_cls = TTS_BACKENDS.load("espeak-ng")
    try:
        tts_cls.check()
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    return tts_cls()


@pytest.fixture(scope="module")
def apertium():
    """The apertium translator; skipped when apertium-eng-spa is not installed."""
    from lipdub.contracts.translate import TRANSLATORS
    from lipdub.languages import parse_language

    if shutil.which("apertium") is None:
        pytest.skip("apertium is not installed")
    translator = TRANSLATORS.create("apertium")
    if not translator.supports(parse_language("en"), parse_language("es")):
        pytest.skip("apertium-eng-spa is not installed")
    return translator
