"""Per-speaker Kokoro voices against espeak-ng + Praat matching, with and without matching (issue 14).

    .venv/bin/python bench/kokoro_voices.py [--language es] [--evaluations 18] [--clips 2spk,th2,face5,vox86]

Speakers: the two of sp_en_2spk_pyannote_sample (turns from its RTTM) and the one of each talking
head th2_retalking_face1, th_retalking_face5, th_voxceleb_pcavs_00086. Each speaker's speech is split
in time: the first part makes the profile and reference clip (what the voice is adapted to), the rest
is held out. Each variant speaks two sentences of the language that neither the search nor its
check uses; printed per speaker and variant: the resemblyzer cosine between the held-out source
speech and the dubbed sentences, and Whisper base's WER and p(language) on them.

Variants: espeak-ng base voice of the register (lipdub.voice.profiles.base_voice) with and without
Praat matching (lipdub.voice.match.match_voice, today's default), Kokoro's nearest pack (start of
the search), the adapted voice (lipdub.backends.tts.kokoro_voice.adapt_voices: the speakers of a clip are
adapted together, so kept distinct), and the adapted voice with Praat matching on top.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import TESTDATA

from lipdub.audio import read_audio, resample, write_audio
from lipdub.backends.tts.kokoro_voice import adapt_voices
from lipdub.contracts.synthesize import TTS_BACKENDS
from lipdub.languages import parse_language
from lipdub.media.probe import decode_audio, probe
from lipdub.qc.intelligibility import hear_line, load_whisper
from lipdub.voice.match import NotMatchable, match_voice
from lipdub.voice.params import measure_voice, spectral_envelope_db
from lipdub.voice.profile import VoiceProfile, cosine, embed_speech
from lipdub.voice.profiles import base_voice

TEXTS = {
    "es": ["¿Has visto las llaves del coche? Creo que las dejé encima de la mesa.",
           "El tren de las ocho llega con retraso por culpa de la lluvia."],
    "fr": ["As-tu vu les clés de la voiture? Je crois que je les ai laissées sur la table.",
           "Le train de huit heures arrive en retard à cause de la pluie."],
    "it": ["Hai visto le chiavi della macchina? Credo di averle lasciate sul tavolo.",
           "Il treno delle otto arriva in ritardo a causa della pioggia."],
    "de": ["Hast du die Autoschlüssel gesehen? Ich glaube, ich habe sie auf dem Tisch gelassen.",
           "Der Zug um acht Uhr hat wegen des Regens Verspätung."],
}
#: (file, speaker -> [(start_s, end_s)]) of the speech; single-speaker spans from the testdata README.
CLIPS = {
    "th2": ("th2_retalking_face1.mp4", {"th2": [(0.0, 2.4), (3.3, 4.5)]}),
    "face5": ("th_retalking_face5.mp4", {"face5": [(0.0, 2.9), (2.9, 4.9)]}),
    "vox86": ("th_voxceleb_pcavs_00086.mp4", {"vox86": [(0.0, 3.2), (3.2, 5.26)]}),
}


def clip_audio(name: str) -> tuple[np.ndarray, dict[str, list[tuple[float, float]]]]:
    if name == "2spk":
        x, sr = read_audio(TESTDATA / "sp_en_2spk_pyannote_sample.wav", mono=True)
        spans: dict[str, list[tuple[float, float]]] = {}
        for line in (TESTDATA / "sp_en_2spk_pyannote_sample.rttm").read_text().splitlines():
            f = line.split()
            spans.setdefault(f[7], []).append((float(f[3]), float(f[3]) + float(f[4])))
        return resample(x, sr, 16000), spans
    path = TESTDATA / CLIPS[name][0]
    _, x16 = decode_audio(path, probe(path))
    return x16, CLIPS[name][1]


def cut(x: np.ndarray, spans) -> np.ndarray:
    return np.concatenate([x[int(a * 16000): int(b * 16000)] for a, b in spans])


def held_out_profiles(x16, spans: dict, vdir: Path) -> tuple[dict, dict]:
    """Per speaker: a profile (and reference clip in ``vdir``) from the first half of their turns
    ``spans`` in ``x16`` (16 kHz), and the audio of the other half, held out."""
    profiles, held = {}, {}
    for spk, sp in spans.items():
        sp = sorted(sp)
        k = max(1, len(sp) // 2)
        profiles[spk] = make_profile(spk, cut(x16, sp[:k]), vdir / f"{spk}.wav")
        held[spk] = cut(x16, sp[k:])
    return profiles, held


def make_profile(speaker: str, ref: np.ndarray, wav: Path) -> VoiceProfile:
    write_audio(wav, ref, 16000)
    p = measure_voice(ref, 16000)
    return VoiceProfile(speaker=speaker, name=speaker, reference_path=wav.name, reference_rate_hz=16000,
                        reference_s=ref.size / 16000, denoised=False, embedding=embed_speech(ref).tolist(),
                        f0_median_hz=p.f0_median_hz, f0_p10_hz=p.f0_p10_hz, f0_p90_hz=p.f0_p90_hz,
                        formants_hz=list(p.formants_hz), spectral_envelope_db=spectral_envelope_db(ref, 16000),
                        voice_register=p.register)


def speak(tts, texts, lang, voice, profile, whisper, held: np.ndarray, match: bool):
    """(cosine to held-out source speech, mean WER, mean p(lang)) of ``texts`` spoken by ``voice``."""
    audio, wers, ps = [], [], []
    for text in texts:
        s = tts.synthesize(text, lang, voice=voice)
        x = s.samples
        if match:
            try:
                x, _ = match_voice(x, s.sample_rate_hz, profile)
            except NotMatchable:
                pass
        heard = hear_line(whisper, x, s.sample_rate_hz, lang.code)
        wers.append(heard.wer(text))
        ps.append(heard.expected_probability)
        audio += [resample(x, s.sample_rate_hz, 16000), np.zeros(1600, np.float32)]
    return cosine(embed_speech(held), embed_speech(np.concatenate(audio))), float(np.mean(wers)), float(np.mean(ps))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--language", default="es")
    ap.add_argument("--evaluations", type=int, default=18)
    ap.add_argument("--clips", default="2spk,th2,face5,vox86")
    args = ap.parse_args()
    lang, texts = parse_language(args.language), TEXTS[args.language]
    whisper = load_whisper("base")
    espeak, kokoro = TTS_BACKENDS.create("espeak-ng"), TTS_BACKENDS.create("kokoro")
    work = Path(tempfile.mkdtemp(prefix="lipdub-kvoices-"))
    print(f"{'speaker':16} {'F0':>5} {'variant':24} {'sim held-out':>12} {'WER':>5} {'p':>5}")
    for clip in args.clips.split(","):
        x16, spans = clip_audio(clip)
        vdir = work / clip
        vdir.mkdir()
        profiles, held = held_out_profiles(x16, spans, vdir)
        t0 = time.perf_counter()
        voices = adapt_voices(profiles, vdir, lang, whisper=whisper, evaluations=args.evaluations, tts=kokoro)
        adapt_s = time.perf_counter() - t0
        for spk, prof in profiles.items():
            ev = base_voice("espeak-ng", lang, spk, profiles)
            v = voices[spk]
            rows = [("espeak-ng " + ev, espeak, ev, False), ("espeak-ng + praat", espeak, ev, True),
                    (f"kokoro {v.start_pack}", kokoro, v.start_pack, False),
                    ("kokoro adapted", kokoro, str(vdir / v.voice_id), False),
                    ("kokoro adapted + praat", kokoro, str(vdir / v.voice_id), True)]
            for label, tts, voice, match in rows:
                sim, wer, p = speak(tts, texts, lang, voice, prof, whisper, held[spk], match)
                print(f"{clip + ':' + spk:16} {prof.f0_median_hz:5.0f} {label:24} {sim:12.3f} {wer:5.2f} {p:5.2f}")
            print(f"{'':16} search from {v.start_pack} (prior {v.nearest_pack}): sim {v.start_similarity:.3f} -> {v.similarity:.3f} on the search sentence, "
                  f"{v.start_check_similarity:.3f} -> {v.check_similarity:.3f} on the check sentence, check WER {v.check_wer}, {v.source}")
        if len(voices) > 1:
            a, b = (np.asarray(v.embedding) for v in voices.values())
            print(f"{'':16} cosine between the clip's two adapted voices {cosine(a, b):.3f}")
        print(f"{'':16} adaptation of {len(voices)} speaker(s): {adapt_s:.0f} s")


if __name__ == "__main__":
    main()
