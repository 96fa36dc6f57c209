"""How well Kokoro's phoneme timings (the model's own durations) match its audio (issue 14).

    .venv/bin/python bench/kokoro_timings.py [--voices jm_kumo,jf_alpha] [--speeds 0.8,1.0,1.4]

Two measures, per language, voice and speed, on sentences written for them (not the tests'):

* bilabial closures: for every /p b/ between two vowels, the time of the energy minimum (2 ms RMS,
  10 ms smoothing, searched +-150 ms) minus the centre of its timed span; printed with the timings
  as the backend gives them and without its ``AUDIO_LEAD_FRAMES`` correction (raw frames);
* word starts: the first phoneme of each word against faster-whisper base's word timestamps
  (cross-attention DTW, ``word_timestamps=True``) on the same audio, where both give the same
  number of words: median and 90th percentile of the absolute difference, and the median signed one.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse

import numpy as np

from lipdub.backends.tts import kokoro as kb
from lipdub.backends.tts import kokoro_g2p
from lipdub.languages import parse_language
from lipdub.qc.intelligibility import hear_line, load_whisper

SENTENCES = {
    "es": ["Papá compró pan para mamá en la plaza.", "El mapa de Panamá es muy bonito.", "Bebo poco vino blanco en las bodas."],
    "fr": ["Papa aime beaucoup le pain blanc.", "Mon ami Paul a mangé une pomme."],
    "it": ["Il babbo compra il pane per la mamma.", "Paolo beve un bicchiere di vino bianco."],
    "de": ["Papa baut ein blaues Boot am Meer.", "Meine Mutter backt Brot und Apfelkuchen."],
    "pt": ["O papai comprou pão para a mamãe.", "A bola bateu na parede da escola."],
    "en": ["My brother bought a paper map in Boston.", "The baby opened a box of apples."],
}
VOWELS = set("aeiouɛɔəɐɪʊæɑʌɜøœy")


def envelope(x: np.ndarray, sr: int, hop_s: float = 0.002) -> tuple[np.ndarray, float]:
    hop = int(hop_s * sr)
    env = np.sqrt((x[: x.size // hop * hop].reshape(-1, hop).astype(np.float64) ** 2).mean(axis=1))
    return np.convolve(env, np.ones(5) / 5, mode="same"), hop / sr


def closure_offsets(speech, shift_s: float) -> list[float]:
    env, hop_s = envelope(speech.samples, speech.sample_rate_hz)
    ph, out = speech.phonemes, []
    for prev, p, nxt in zip(ph, ph[1:], ph[2:]):
        if p.phoneme in ("p", "b") and prev.phoneme[:1] in VOWELS and nxt.phoneme[:1] in VOWELS:
            centre = 0.5 * (p.start_s + p.end_s) + shift_s
            lo, hi = max(0, int((centre - 0.15) / hop_s)), int((centre + 0.15) / hop_s)
            if hi > lo:
                out.append((lo + int(np.argmin(env[lo:hi]))) * hop_s - centre)
    return out


def word_starts(text: str, lang, speech) -> list[float] | None:
    """Start of each word's first phoneme, from the G2P's word breaks (None when counts disagree)."""
    counts = []
    for phrase in kokoro_g2p.phonemize(text, lang):
        n = 0
        for chars, ipa in phrase.pieces:
            if ipa is not None:
                n += 1
            elif n and chars != "ˈ" and chars != "ˌ":
                counts.append(n)
                n = 0
        if n:
            counts.append(n)
    if sum(counts) != len(speech.phonemes):
        return None
    starts, i = [], 0
    for n in counts:
        starts.append(speech.phonemes[i].start_s)
        i += n
    return starts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--voices", default="jm_kumo,jf_alpha")
    ap.add_argument("--speeds", default="0.8,1.0,1.4")
    args = ap.parse_args()
    tts, whisper = kb.KokoroTts(), load_whisper("base")
    shift = kb.AUDIO_LEAD_FRAMES * kb.FRAME_SAMPLES / kb.SAMPLE_RATE_HZ
    print(f"AUDIO_LEAD_FRAMES {kb.AUDIO_LEAD_FRAMES} ({shift * 1000:.1f} ms)")
    print(f"{'lang':4} {'voice':9} {'speed':>5} | {'n':>3} {'closure med ms':>14} {'raw med ms':>10} {'|err| p90 ms':>12} | "
          f"{'words':>5} {'start |d| med':>13} {'p90':>5} {'signed med':>10}")
    pooled, pooled_raw, pooled_words = [], [], []
    for code, texts in SENTENCES.items():
        lang = parse_language(code)
        for voice in args.voices.split(","):
            for speed in (float(s) for s in args.speeds.split(",")):
                offs, raw, dw = [], [], []
                for text in texts:
                    s = tts.synthesize(text, lang, voice=voice, rate=speed)
                    offs += closure_offsets(s, 0.0)
                    raw += closure_offsets(s, shift)
                    starts = word_starts(text, lang, s)
                    heard = hear_line(whisper, s.samples, s.sample_rate_hz, code, word_timestamps=True)
                    if starts is not None and len(heard.words) == len(starts):
                        dw += [w[0] - t for w, t in zip(heard.words, starts)]
                pooled += offs
                pooled_raw += raw
                pooled_words += dw
                o, r, d = np.array(offs) * 1000, np.array(raw) * 1000, np.array(dw) * 1000
                print(f"{code:4} {voice:9} {speed:5.2f} | {o.size:3d} {np.median(o) if o.size else np.nan:14.1f} "
                      f"{np.median(r) if r.size else np.nan:10.1f} {np.percentile(np.abs(o), 90) if o.size else np.nan:12.1f} | "
                      f"{d.size:5d} {np.median(np.abs(d)) if d.size else np.nan:13.1f} {np.percentile(np.abs(d), 90) if d.size else np.nan:5.1f} "
                      f"{np.median(d) if d.size else np.nan:10.1f}")
    o, r, d = np.array(pooled) * 1000, np.array(pooled_raw) * 1000, np.array(pooled_words) * 1000
    print(f"pooled: closures n={o.size} median {np.median(o):.1f} ms (raw frames {np.median(r):.1f} ms), "
          f"|err| median {np.median(np.abs(o)):.1f} p90 {np.percentile(np.abs(o), 90):.1f} ms; "
          f"word starts n={d.size} |d| median {np.median(np.abs(d)):.1f} p90 {np.percentile(np.abs(d), 90):.1f} ms, signed median {np.median(d):.1f} ms")


if __name__ == "__main__":
    main()
