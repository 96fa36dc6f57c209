"""Measure the Kokoro blend bank of one or more languages and write it where lipdub ships it.

    .venv/bin/python scripts/kokoro_blend_bank.py es [fr ...]

Writes ``src/lipdub/backends/tts/data/kokoro-blends-<lang>.json``
(:func:`lipdub.backends.tts.kokoro_bank.measure_bank`: :data:`~lipdub.backends.tts.kokoro_bank.BANK_SIZE`
syntheses of the language's search sentence, about 2.5 s of CPU each). Run it again when the packs,
the search sentence or the bank's settings change (the voices stage then finds the shipped file stale,
by its key, and measures the bank once per machine instead).
"""

from __future__ import annotations

import json
import sys

from lipdub.backends.tts import kokoro_bank
from lipdub.backends.tts.kokoro_model import stock_packs
from lipdub.contracts.synthesize import TTS_BACKENDS
from lipdub.languages import parse_language
from lipdub.runtime import apply_thread_policy


def main() -> None:
    apply_thread_policy()
    tts = TTS_BACKENDS.create("kokoro")
    for code in sys.argv[1:] or ["es"]:
        lang = parse_language(code)
        data = kokoro_bank.measure_bank(kokoro_bank.Scorer(tts, lang), stock_packs(), lang.code)
        path = kokoro_bank.bank_files(lang.code)[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
        print(f"{path}: {len(data['rows'])} blends")


if __name__ == "__main__":
    main()
