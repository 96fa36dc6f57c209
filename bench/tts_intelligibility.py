"""Intelligibility of the TTS backends per language and voice, heard back by Whisper base (issue 14).

    .venv/bin/python bench/tts_intelligibility.py [--languages es,fr,it,pt,de,en,ja] [--sentences 3]
                                                  [--voices jm_kumo,jf_alpha,...] [--speeds 1.0,1.25,1.5,1.75]

For each language: espeak-ng (its default voice) and Kokoro with each bundled pack speak the same
sentences (written here, used nowhere else); faster-whisper base transcribes each forced to the
language (WER against the text after lipdub.qc.intelligibility.normalize_words) and identifies the
language unforced (the probability it gives the expected language, and how often it is the top
one). Also printed: Kokoro's RTF (synthesis seconds per second of speech, this machine), and the
resemblyzer cosine between each voice and jm_kumo (how different the packs sound). Then Kokoro's
``speed`` sweep with the default pack on the first language (WER against speed, for ``max_rate``).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lipdub.audio import resample
from lipdub.contracts.synthesize import TTS_BACKENDS
from lipdub.languages import parse_language
from lipdub.qc.intelligibility import hear_line, load_whisper
from lipdub.voice.profile import cosine, embed_speech

SENTENCES = {
    "es": ["Buenos días, me llamo Juan y vivo en Barcelona desde hace muchos años.",
           "¿Has visto las llaves del coche? Creo que las dejé encima de la mesa.",
           "El tren de las ocho llega con retraso por culpa de la lluvia."],
    "fr": ["Bonjour, je m'appelle Pierre et j'habite à Paris depuis dix ans.",
           "As-tu vu les clés de la voiture? Je crois que je les ai laissées sur la table.",
           "Le train de huit heures arrive en retard à cause de la pluie."],
    "it": ["Buongiorno, mi chiamo Marco e vivo a Roma da molti anni.",
           "Hai visto le chiavi della macchina? Credo di averle lasciate sul tavolo.",
           "Il treno delle otto arriva in ritardo a causa della pioggia."],
    "pt": ["Bom dia, meu nome é João e moro em Lisboa há muitos anos.",
           "Você viu as chaves do carro? Acho que as deixei em cima da mesa.",
           "O trem das oito chega atrasado por causa da chuva."],
    "de": ["Guten Morgen, ich heiße Anna und wohne seit vielen Jahren in Berlin.",
           "Hast du die Autoschlüssel gesehen? Ich glaube, ich habe sie auf dem Tisch gelassen.",
           "Der Zug um acht Uhr hat wegen des Regens Verspätung."],
    "en": ["Good morning, my name is John and I have lived in London for many years.",
           "Have you seen the car keys? I think I left them on the table.",
           "The eight o'clock train is late because of the rain."],
    "ja": ["おはようございます。私の名前は田中です。",
           "車の鍵を見ましたか。テーブルの上に置いたと思います。",
           "八時の電車は雨のせいで遅れています。"],
}


def measure(whisper, tts, code: str, texts: list[str], voice: str | None, rate: float = 1.0):
    """Mean WER, mean p(expected language), share detected as expected, RTF, and the d-vector of all lines."""
    lang = parse_language(code)
    wers, ps, top, synth_s, audio_s, audio = [], [], 0, 0.0, 0.0, []
    for text in texts:
        t0 = time.perf_counter()
        s = tts.synthesize(text, lang, voice=voice, rate=rate)
        synth_s += time.perf_counter() - t0
        audio_s += s.duration_s
        heard = hear_line(whisper, s.samples, s.sample_rate_hz, code)
        wers.append(heard.wer(text))
        ps.append(heard.expected_probability)
        top += heard.detected_language == code
        audio.append(resample(s.samples, s.sample_rate_hz, 16000))
    return float(np.mean(wers)), float(np.mean(ps)), top / len(texts), synth_s / audio_s, embed_speech(np.concatenate(audio))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--languages", default="es,fr,it,pt,de,en,ja")
    ap.add_argument("--sentences", type=int, default=3)
    ap.add_argument("--voices", default="jm_kumo,jf_alpha,jf_gongitsune,jf_nezumi,jf_tebukuro")
    ap.add_argument("--speeds", default="1.0,1.25,1.5,1.75")
    args = ap.parse_args()
    whisper = load_whisper("base")
    espeak, kokoro = TTS_BACKENDS.create("espeak-ng"), TTS_BACKENDS.create("kokoro")
    kokoro.synthesize("Hola.", parse_language("es"))  # model load outside the RTF
    print(f"{'lang':4} {'backend':9} {'voice':13} {'WER':>5} {'p(lang)':>7} {'top1':>5} {'RTF':>5} {'cos kumo':>8}")
    for code in args.languages.split(","):
        texts = SENTENCES[code][: args.sentences]
        rows = []
        if espeak.supports(parse_language(code)):
            rows.append(("espeak-ng", "default", *measure(whisper, espeak, code, texts, None)))
        for voice in args.voices.split(","):
            rows.append(("kokoro", voice, *measure(whisper, kokoro, code, texts, voice)))
        ref = next((r[-1] for r in rows if r[1] == "jm_kumo"), rows[-1][-1])
        for backend, voice, wer, p, top, rtf, emb in rows:
            print(f"{code:4} {backend:9} {voice:13} {wer:5.2f} {p:7.2f} {top:5.2f} {rtf:5.2f} {cosine(ref, emb):8.2f}")
    code = args.languages.split(",")[0]
    print(f"speed sweep, kokoro jm_kumo, {code}:")
    for rate in (float(r) for r in args.speeds.split(",")):
        wer, p, top, rtf, _ = measure(whisper, kokoro, code, SENTENCES[code][: args.sentences], "jm_kumo", rate)
        print(f"  speed {rate:4.2f}: WER {wer:.2f}  p({code}) {p:.2f}  top1 {top:.2f}")


if __name__ == "__main__":
    main()
