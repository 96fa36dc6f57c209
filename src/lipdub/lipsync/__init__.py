"""Lip-sync backends (retrieval, ...) and the shared compositor (stages 11 and 12)."""
