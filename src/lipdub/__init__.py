"""lipdub: dub a video into another language with lip sync.

The public Python API is :func:`lipdub.pipeline.dub` with a :class:`lipdub.config.DubConfig`;
the CLI (:mod:`lipdub.cli`) is a thin shell over it.
"""

__version__ = "0.1.0"
