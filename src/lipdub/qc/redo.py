"""``lipdub dub --redo-failed``: re-fit the lines the last quality report failed (DESIGN.md section 4).

For every segment whose timing verdict in ``<project>/report/<lang>/report.json`` is ``fail``, a
:class:`~lipdub.script.RedoRequest` is written into ``script.json`` (``targets.<lang>.redo``): the
line's isochrony limits become ``+0.15`` effective speed-up (capped at
:data:`lipdub.timing.isochrony.HARD_MAX_SPEEDUP`) and two more synthesis / re-translation attempts
(more re-translation when the translator is ``llm``; a rule-based translator cannot shorten). The
synthesize step honours the request (its cache key changes, so only those lines are redone), and the
new report judges the line against the limit it had *before* the request (a line made to fit by
speaking faster shows as a warning, not a pass) and lists what changed per segment in ``changes``.
The request stays in ``script.json`` (later runs keep the re-fitted line); delete it to go back.
"""

from __future__ import annotations

import json
import logging
from typing import Callable

from ..errors import ConfigError
from ..script import RedoRequest, Script, Segment
from ..timing.isochrony import HARD_MAX_SPEEDUP

log = logging.getLogger(__name__)

STEP_SPEEDUP = 0.15  # the off-screen allowance of the isochrony policy (OFFSCREEN_EXTRA_SPEEDUP)
EXTRA_ATTEMPTS = 2
MAX_ATTEMPTS = 10  # DubConfig.max_attempts' upper bound


def mark_failed_segments(project, script: Script, language: str, policy_of: Callable[[Segment], object]) -> list[int]:
    """Write a redo request for each segment the previous report failed; returns their ids.

    Args:
        project: the :class:`~lipdub.project.Project` (its ``report/<language>/report.json`` is read,
            ``script.json`` written).
        script: the loaded script (modified and saved).
        policy_of: the segment's current :class:`~lipdub.timing.isochrony.IsochronyPolicy`.
    Raises:
        ConfigError: there is no previous report for ``language``.
    """
    path = project.root / "report" / language / "report.json"
    if not path.exists():
        raise ConfigError(f"--redo-failed: no quality report for {language} in {project.root}",
                          "run the dub once without --redo-failed: it writes report/<lang>/report.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    rows = {s["id"]: s for s in (data.get("timing") or {}).get("segments", [])}
    marked = []
    for seg in script.segments:
        row, t = rows.get(seg.id), seg.targets.get(language)
        if row is None or t is None or row.get("verdict") != "fail":
            continue
        pol = policy_of(seg)
        speedup = round(min(HARD_MAX_SPEEDUP, pol.max_speedup + STEP_SPEEDUP), 4)
        attempts = min(MAX_ATTEMPTS, pol.max_attempts + EXTRA_ATTEMPTS)
        if speedup <= pol.max_speedup and attempts <= pol.max_attempts:
            log.warning("segment %s: already at the largest re-fit limits, not redone", seg.id)
            continue
        base = t.redo.base_speedup_limit if t.redo is not None else pol.max_speedup
        t.redo = RedoRequest(max_speedup=speedup, max_attempts=attempts, base_speedup_limit=base,
                             reason="; ".join(row.get("reasons") or []) or "failed", report_verdict=row["verdict"],
                             previous_speedup=row.get("speedup"))
        marked.append(seg.id)
    project.save_script(script)
    log.info("--redo-failed %s: segments %s re-fitted", language, marked)
    return marked
