"""The studio service (DESIGN.md section 5): a REST API, a web page and a job queue over the pipeline.

Embedded (nothing to start): ``lipdub serve --data-dir DIR`` runs the API, the web page, a SQLite job
store and an in-process worker pool. At scale: ``LIPDUB_DATABASE_URL=postgresql+psycopg://...``,
``LIPDUB_BROKER_URL=redis://...``, ``lipdub serve`` once and ``lipdub worker`` once per GPU.
"""
