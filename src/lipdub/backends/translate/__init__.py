"""Backend adapters, one module per backend."""
