"""Quality control (stage 14): measurements of a dub."""
