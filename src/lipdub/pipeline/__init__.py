"""The dubbing pipeline (DESIGN.md section 1): a small runner over an ordered list of stages, one
module per stage in :mod:`lipdub.pipeline.stages`.

Python API::

    from lipdub.config import DubConfig
    from lipdub.pipeline import dub

    result = dub(DubConfig(input="talk.mp4", targets=["es"], output="out/"))
    print(result.outputs["es"].media)

Every stage computes a hash of its inputs, is skipped when the project's manifest has a record with
the same hash and its artifacts exist, and otherwise runs and records its artifacts and timing
(:mod:`lipdub.pipeline.runner`). The language-independent stages (ingest ... profiles) run once for
all target languages.
"""

from .dubber import Dubber, DubResult, LanguageOutputs, dub, stages_until
from .hooks import PipelineHooks

__all__ = ["DubResult", "Dubber", "LanguageOutputs", "PipelineHooks", "dub", "stages_until"]
