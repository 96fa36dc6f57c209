"""The stages of a dub, one module each, in the order they run (DESIGN.md section 1).

``SOURCE_STAGES`` run once per source; ``LANGUAGE_STAGES`` once per target language. Adding a stage:
its contract in :mod:`lipdub.contracts` (if it has backends), its module here (a
:class:`~lipdub.pipeline.runner.Stage`), and one entry in the list below.
"""

from __future__ import annotations

from .align import Align
from .diarize import Diarize
from .faces import Faces
from .ingest import Ingest
from .lipsync import Lipsync
from .mix import Mix
from .profiles import Profiles
from .render import Render
from .report import Report
from .script import BuildScript
from .separate import Separate
from .speakers import Speakers
from .synthesize import Synthesize
from .transcribe import Transcribe
from .translate import Translate
from .vad import Vad
from .voices import Voices

#: Faces (the video branch) is queued right after ingest and runs beside separate ... transcribe;
#: speakers waits for it (:mod:`lipdub.pipeline.branches`).
SOURCE_STAGES = (Ingest(), Faces(), Separate(), Vad(), Diarize(), Transcribe(), Speakers(), BuildScript(), Profiles(), Align())
LANGUAGE_STAGES = (Translate(), Voices(), Synthesize(), Mix(), Lipsync(), Render(), Report())
#: Source stages needed only for dubbing (they run after the target languages were checked).
DUBBING_ONLY = frozenset({"profiles", "align"})
