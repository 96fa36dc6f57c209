"""Timing fit of dubbed speech (isochrony): silence trim, time-stretch, slots, and the closed fit loop."""
