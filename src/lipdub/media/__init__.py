"""Media helpers below every stage: probing and decoding sources (PyAV), frame times, and the final encode/mux (FFmpeg)."""
