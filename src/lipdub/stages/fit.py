"""Timing fit (isochrony) of one synthesized line to its slot: trim, borrow free time, time-stretch.

Filled in by the TTS work; see :func:`fit_speech`.
"""
