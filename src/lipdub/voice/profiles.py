"""Stage 7, profiles: one voice profile per diarized speaker (see :mod:`lipdub.voice.profile`).

Artifacts in the project directory: ``voices/<speaker>.json`` (a :class:`VoiceProfile`) and
``voices/<speaker>.wav`` (the reference clip). With a voice bank, a speaker whose script.json name is
a bank entry takes that entry; a speaker still carrying its default name (its id) whose voice is
close to a bank character takes that character's name and profile; other named speakers are saved
to the bank under their names.

Also here: the choice of the base TTS voice per speaker (:func:`base_voice`), before matching.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import read_audio, to_mono, write_audio
from ..contracts.synthesize import TTS_BACKENDS
from ..errors import LipdubError
from ..languages import Language
from ..layout import ProjectLayout
from ..script import Script
from .profile import (
    SpeakerSpeech,
    VoiceProfile,
    bank_key,
    build_profile,
    load_bank,
    match_bank,
    save_to_bank,
)

log = logging.getLogger(__name__)

#: espeak-ng variants by register, in the order speakers of that register receive them (distinct
#: base voices for distinct characters before matching); ``espeak-ng --voices=variant`` lists them.


@dataclass
class ProfilesResult:
    """What :func:`make_profiles` did: profile per speaker id, renamed speakers, bank actions."""

    profiles: dict[str, VoiceProfile]
    artifacts: list[str]
    details: dict


def make_profiles(root: Path, script: Script, audio: np.ndarray, sample_rate_hz: int, denoised: bool,
                  voice_bank: Path | None, denoise=None, language: str | None = None) -> ProfilesResult:
    """Build (or take from the bank) every speaker's profile and write them under ``root/voices``.

    Args:
        root: project directory.
        script: the script; speakers' ``name`` may be changed to a matched bank character (the caller saves it).
        audio: float32 mono ``(n,)`` or ``(n, ch)`` source speech (dialogue stem or mix).
        sample_rate_hz: its rate.
        denoised: whether ``audio`` is DeepFilterNet output.
        voice_bank: bank directory or None.
        denoise: DeepFilterNet enhancement callable for noisy references (None: not available).
        language: the source language (ISO 639-1), for syllable counting.

    Raises:
        InputError: the bank is not a directory or holds an invalid entry.
    """
    audio = to_mono(audio) if audio.ndim == 2 else audio
    vdir = root / ProjectLayout.VOICES_DIR
    vdir.mkdir(parents=True, exist_ok=True)
    bank = load_bank(voice_bank) if voice_bank is not None else {}
    profiles, artifacts, details = {}, [], {"speakers": {}}
    for spk in script.speakers:
        own = [(s.start_s, s.end_s, s.source_text) for s in script.segments if s.speaker == spk.id]
        if not own:
            continue
        others = [(s.start_s, s.end_s) for s in script.segments if s.speaker != spk.id]
        wav = vdir / f"{spk.id}.wav"
        action = "extracted"
        named = bool(spk.name.strip()) and spk.name != spk.id  # a character name given in script.json
        key = bank_key(spk.name) if named else None
        if key is not None and key in bank:
            prof, action = _from_bank(bank[key], Path(voice_bank) / key, spk.id, wav), f"voice bank entry {key}"
        else:
            try:
                prof = build_profile(SpeakerSpeech(spk.id, spk.name, own), others, audio, sample_rate_hz, wav, denoised, denoise,
                                     language=language)
            except LipdubError as exc:
                log.warning("no voice profile for %s: %s", spk.id, exc)
                details["speakers"][spk.id] = {"error": str(exc)}
                continue
            if bank and not named:
                hit = match_bank(prof.embedding_array(), bank)
                if hit is not None:
                    bkey, cos = hit
                    spk.name = bank[bkey].name
                    prof, action = _from_bank(bank[bkey], Path(voice_bank) / bkey, spk.id, wav), f"matched voice bank entry {bkey} (cosine {cos:.2f})"
            if voice_bank is not None and action == "extracted":
                if named:
                    save_to_bank(prof, wav, voice_bank)
                    action = f"extracted, saved to the voice bank as {bank_key(prof.name)}"
                else:
                    action = "extracted; not in the voice bank (give the speaker a name in script.json to keep the voice)"
        (vdir / f"{spk.id}.json").write_text(prof.model_dump_json(indent=2), encoding="utf-8")
        profiles[spk.id] = prof
        artifacts += [ProjectLayout.voice_profile(spk.id), ProjectLayout.voice_reference(spk.id)]
        details["speakers"][spk.id] = {"name": spk.name, "action": action, "f0_median_hz": prof.f0_median_hz,
                                       "register": prof.voice_register, "syllables_per_s": prof.syllables_per_s,
                                       "reference_s": prof.reference_s, "denoised": prof.denoised}
    return ProfilesResult(profiles, artifacts, details)


def _from_bank(entry: VoiceProfile, entry_dir: Path, speaker_id: str, wav: Path) -> VoiceProfile:
    ref, sr = read_audio(entry_dir / entry.reference_path, mono=True)
    write_audio(wav, ref, sr)
    return entry.model_copy(update={"speaker": speaker_id, "reference_path": wav.name})


def load_profiles(root: Path) -> dict[str, VoiceProfile]:
    """The profiles written by the stage, keyed by speaker id (empty when there are none)."""
    out = {}
    for f in sorted((root / ProjectLayout.VOICES_DIR).glob("*.json")):
        prof = VoiceProfile.model_validate_json(f.read_text(encoding="utf-8"))
        out[prof.speaker] = prof
    return out


def base_voice(tts_name: str, language: Language, speaker_id: str, profiles: dict[str, VoiceProfile]) -> str | None:
    """The base TTS voice of a speaker before matching, from the register of their profile: the TTS
    backend's :meth:`~lipdub.contracts.synthesize.TextToSpeech.base_voice` for that register and the
    speaker's rank among the speakers of the same register (so two women get two different voices).
    None: the backend's default voice (cloning backends clone instead).
    """
    prof = profiles.get(speaker_id)
    if prof is None:
        return None
    same = sorted(s for s, p in profiles.items() if p.voice_register == prof.voice_register)
    return TTS_BACKENDS.load(tts_name).base_voice(language, prof.voice_register, same.index(speaker_id))
