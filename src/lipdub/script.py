"""The dub script (``script.json``): speakers and segments, meant to be edited by people.

Edit a segment's ``source_text``, a target line's ``text`` or a segment's ``speaker`` and re-run
``lipdub dub``: only what depends on the edit is redone (that segment's translation or speech, then
the mix and render). Times are seconds from the start of the source.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, computed_field

from .errors import InputError
from .subtitles import Cue


class Word(BaseModel):
    """One recognized word with its time span (seconds) and recognizer probability in [0, 1]."""

    start_s: float
    end_s: float
    text: str
    probability: float | None = None


class FitAttempt(BaseModel):
    """One try of the closed-loop isochrony (:mod:`lipdub.timing.isochrony`) for a line.

    ``stage`` is ``"estimate"`` (before synthesis: syllables / speaker rate) or ``"synthesis"``
    (measured). ``needed_ratio`` is duration / window (window = slot plus the free time it may
    borrow); ``action`` says what was done next: ``"fit"``, ``"re-synthesize faster"``,
    ``"re-translate shorter"``, ``"cannot shorten (rule-based translator)"``, ``"out of attempts"``,
    or after the line was heard back (:class:`LineHearing`) ``"misheard (WER w, <diagnosis>): <remedy>"`` /
    ``"... : flagged"`` (the diagnosis, :func:`lipdub.pipeline.hearing.diagnose`: ``mostly heard`` or
    ``garbled``, the words heard right and the misheard ones). ``voice`` and ``remedy`` (``"other voice"``,
    ``"phrase split"``, ``"lower speed"``, ``"word pause"``: the action then gives the text spoken) say
    how a re-synthesis for intelligibility was made; ``wer`` / ``heard`` what ASR heard of the fitted
    speech of this attempt (None: this attempt was not kept or not heard).
    """

    stage: str
    text: str
    duration_s: float
    window_s: float
    needed_ratio: float
    tts_rate: float = 1.0
    action: str = "fit"
    voice: str | None = None
    remedy: str | None = None
    wer: float | None = None
    heard: str | None = None


class LineHearing(BaseModel):
    """What ASR heard of a line's fitted speech (the intelligibility check, DESIGN.md section 4).

    ``wer``: word error rate of ``transcript`` against the line's text
    (:func:`lipdub.qc.intelligibility.word_error_rate`); ``threshold``: the WER above which the line
    was re-synthesized; ``flagged``: still above it after every attempt (the line is kept, and the
    quality report lists it); ``model``: the ASR model; ``attempts``: lines heard (first try plus
    re-syntheses for intelligibility).
    """

    wer: float
    transcript: str
    threshold: float
    flagged: bool = False
    model: str = ""
    attempts: int = 1


class FitReport(BaseModel):
    """How one synthesized line was fitted into its slot (DESIGN.md section 1, stage 8).

    ``stretch_ratio`` is synthesized duration / placed duration: 1.0 untouched, 1.2 played 20 %
    faster (rubberband time-stretch, pitch kept). ``overrun_s`` is what still did not fit after
    borrowing free time and stretching to the limit. ``tts_rate`` is the TTS speaking rate of
    the kept attempt (> 1 faster), ``natural_speed`` the TTS rate at which the voice speaks the
    language at its natural rate (:func:`lipdub.voice.params.natural_speed`; 1.0: the TTS's own rate),
    ``speedup`` the effective speed-up, the one definition every figure uses: ``tts_rate x
    stretch_ratio / natural_speed``. ``max_stretch`` is the speed-up limit that applied (off-screen
    lines may get more), ``on_screen`` whether the speaker has a face track, ``voice_match`` the pitch
    and formant change applied (None: not matched), ``hearing`` what ASR heard of the line (None: not
    checked), ``history`` every isochrony attempt. ``delayed_s``: how much later than its own fit the
    line is placed because the line before it overran (:mod:`lipdub.timing.placement`); the placement,
    borrowed time and overrun are those after the delay.
    """

    tts_backend: str
    voice: str | None = None
    synthesized_duration_s: float
    trimmed_duration_s: float
    slot_start_s: float
    slot_end_s: float
    placed_start_s: float
    placed_end_s: float
    stretch_ratio: float
    borrowed_before_s: float = 0.0
    borrowed_after_s: float = 0.0
    overrun_s: float = 0.0
    delayed_s: float = 0.0
    attempts: int = 1
    audio_path: str | None = None
    tts_rate: float = 1.0
    natural_speed: float = 1.0
    max_stretch: float | None = None
    on_screen: bool | None = None
    voice_match: dict | None = None
    hearing: LineHearing | None = None
    history: list[FitAttempt] = Field(default_factory=list)

    @computed_field  # written to script.json, so that every reader shows the same figure
    @property
    def speedup(self) -> float:
        """Effective speed-up: TTS rate x time-stretch ratio, over the voice's natural speed."""
        return effective_speedup(self.tts_rate, self.stretch_ratio, self.natural_speed)


def effective_speedup(tts_rate: float, stretch_ratio: float, natural_speed: float = 1.0) -> float:
    """The effective speed-up of a line (rounded to 4 decimals): ``tts_rate x stretch_ratio /
    natural_speed``, 1.0 = the voice's natural rate. The isochrony fit, the synthesize stage, the
    quality report, its HTML page and the studio's script table all use this one definition."""
    return round(tts_rate * stretch_ratio / (natural_speed if natural_speed > 0 else 1.0), 4)


class RedoRequest(BaseModel):
    """A re-fit asked for by ``lipdub dub --redo-failed`` for a line the quality report did not pass
    (:mod:`lipdub.qc.redo`): the isochrony limits used instead of the defaults, and why."""

    max_speedup: float
    max_attempts: int
    base_speedup_limit: float  # the limit before any redo: the report still judges the line by it
    reason: str
    report_verdict: str
    previous_speedup: float | None = None


class TargetLine(BaseModel):
    """A segment's text in one target language.

    ``text`` is what is spoken (edit it freely); ``machine_text`` is what the translator returned;
    ``source_hash`` identifies the source text it was translated from, so an edited source line is
    re-translated and an edited target line is kept. ``estimates``: the isochrony checks made
    before synthesis (estimated duration, re-translation requests); ``shortened_from``: the
    translator's first text when the isochrony loop replaced it with a shorter one (``text``).
    """

    text: str
    machine_text: str | None = None
    translator: str | None = None
    source_hash: str | None = None
    duration_budget_s: float | None = None
    fit: FitReport | None = None
    estimates: list[FitAttempt] = Field(default_factory=list)
    shortened_from: str | None = None
    redo: RedoRequest | None = None  # set by --redo-failed; honoured by the synthesize step

    @property
    def edited(self) -> bool:
        return self.machine_text is not None and self.text != self.machine_text


class Segment(BaseModel):
    """One line of speech: a speaker's words between ``start_s`` and ``end_s`` (seconds).

    ``no_speech_prob``: Whisper's probability that the window of this line holds no speech (None for
    imported lines); a recognized line over silence is not dubbed (:mod:`lipdub.pipeline.stages.translate`).
    """

    id: int
    start_s: float
    end_s: float
    speaker: str
    source_text: str
    words: list[Word] = Field(default_factory=list)
    targets: dict[str, TargetLine] = Field(default_factory=dict)
    no_speech_prob: float | None = None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class Speaker(BaseModel):
    """A diarized speaker. ``name`` is free text; ``voice`` overrides the TTS voice for this speaker.

    ``track`` is the face track that is this speaker on screen (None: off-screen), or a list of
    them when the speaker is seen in several shots (a track never crosses a cut), found by the
    active-speaker match with ``track_confidence`` in [0, 1]; edit it to correct the match (the
    lip-sync animates the tracks named here).
    """

    id: str
    name: str
    voice: str | None = None
    speech_s: float = 0.0
    track: int | list[int] | None = None
    track_confidence: float | None = None

    def track_ids(self) -> list[int]:
        """The face tracks of this speaker (empty: off-screen)."""
        if self.track is None:
            return []
        return [int(t) for t in self.track] if isinstance(self.track, list) else [int(self.track)]


class Script(BaseModel):
    """The whole editable script of one project."""

    version: int = 1
    source_language: str
    language_probability: float | None = None
    transcript_hash: str = ""
    speakers: list[Speaker] = Field(default_factory=list)
    segments: list[Segment] = Field(default_factory=list)

    def speaker(self, speaker_id: str) -> Speaker | None:
        return next((s for s in self.speakers if s.id == speaker_id), None)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Script":
        """Read and validate ``script.json``.

        Raises:
            InputError: the file is not valid JSON or does not match the script schema (the message
                names the first bad field).
        """
        path = Path(path)
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InputError(
                f"{path} is not a valid script: {where}: {first['msg']}",
                "fix that field (or delete script.json to rebuild it from the transcript)",
            ) from exc
        except json.JSONDecodeError as exc:  # pragma: no cover - pydantic wraps most of these
            raise InputError(f"{path} is not valid JSON: {exc}", "fix the file or delete it") from exc

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically (temp file + rename) with stable indentation for diffs."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")  # one per thread: two branches may save
        tmp.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        os.replace(tmp, path)


def target_cues(script: Script, language: str) -> list[Cue]:
    """Subtitle cues of the dub in ``language``: the target text over the time its speech is actually
    placed (at least 0.5 s), or over the source segment when the line has no fit yet."""
    cues = []
    for s in script.segments:
        t = s.targets.get(language)
        if t is None:
            continue
        if t.fit is not None:
            cues.append(Cue(t.fit.placed_start_s, max(t.fit.placed_end_s, t.fit.placed_start_s + 0.5), t.text))
        else:
            cues.append(Cue(s.start_s, s.end_s, t.text))
    return cues


def source_cues(script: Script) -> list[Cue]:
    """Subtitle cues of the source text over each segment's span."""
    return [Cue(s.start_s, s.end_s, s.source_text) for s in script.segments]
