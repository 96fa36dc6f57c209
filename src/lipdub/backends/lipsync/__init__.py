"""Lip-sync backends: retrieval (no weights), Wav2Lip / Wav2Lip-GAN, external command."""
