"""Speaker voices (DESIGN.md stage 7): profiles of each diarized speaker, a voice bank shared across
projects, and voice matching of synthesized speech toward a profile (Praat through parselmouth)."""
