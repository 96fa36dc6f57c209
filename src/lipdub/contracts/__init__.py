"""Stage contracts: result types, backend protocols and registries (backends import these; these import no stage module or backend)."""
