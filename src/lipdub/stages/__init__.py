"""Pipeline stages, one module per stage (DESIGN.md section 1)."""
