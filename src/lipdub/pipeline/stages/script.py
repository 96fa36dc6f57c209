"""The script stage: merge the transcript and the speaker turns into ``script.json`` (speakers and
segments), the file people edit."""

from __future__ import annotations

from ...contracts.diarize import SpeakerTurn
from ...contracts.transcribe import Transcript, TranscriptSegment, TranscriptWord
from ...layout import ProjectLayout as L
from ...script import Script, Segment, Speaker, Word
from ..context import PipelineContext
from ..runner import Stage, StageDetails, StageOutput
from .speakers import apply_speaker_tracks


class ScriptDetails(StageDetails):
    segments: int
    speakers: int


class BuildScript(Stage):
    name = "script"
    version = 1

    def inputs(self, ctx: PipelineContext) -> list:
        return [ctx.project.output_hash("transcribe"), ctx.project.output_hash("diarize")]

    def media_s(self, ctx: PipelineContext) -> float | None:
        return None

    def run(self, ctx: PipelineContext) -> StageOutput:
        p = ctx.project
        tr_raw = p.read_json(L.TRANSCRIPT)
        transcript = Transcript(
            language=tr_raw["language"],
            language_probability=tr_raw.get("language_probability"),
            model=tr_raw.get("model"),
            segments=[TranscriptSegment(s["start_s"], s["end_s"], s["text"], [TranscriptWord(**w) for w in s["words"]],
                                        s.get("no_speech_prob")) for s in tr_raw["segments"]],
        )
        turns = [SpeakerTurn(**t) for t in p.read_json(L.DIARIZATION)]
        script = build_script(transcript, turns)
        script.transcript_hash = p.output_hash("transcribe")
        if ctx.layout.abs(L.SPEAKERS).exists():
            apply_speaker_tracks(script, p.read_json(L.SPEAKERS))
        p.save_script(script)
        return StageOutput([L.SCRIPT], ScriptDetails(segments=len(script.segments), speakers=len(script.speakers)), None)


def build_script(transcript: Transcript, turns: list[SpeakerTurn]) -> Script:
    """Merge ASR segments and speaker turns into script segments.

    Each word takes the speaker whose turn overlaps it most (the nearest turn when none overlaps); a
    segment is split where the speaker changes between words. Segments without words (imported
    subtitles) take the speaker with the largest overlap. With no turns, everyone is ``SPEAKER_00``.
    """
    def speaker_at(a: float, b: float) -> str:
        if not turns:
            return "SPEAKER_00"
        best, best_ov = None, 0.0
        for t in turns:
            ov = min(b, t.end_s) - max(a, t.start_s)
            if ov > best_ov:
                best, best_ov = t.speaker, ov
        if best is not None:
            return best
        mid = (a + b) / 2
        return min(turns, key=lambda t: min(abs(mid - t.start_s), abs(mid - t.end_s))).speaker

    segments: list[Segment] = []
    for ts in transcript.segments:
        text = ts.text.strip()
        if not text:
            continue
        if not ts.words:
            segments.append(Segment(id=len(segments), start_s=round(ts.start_s, 3), end_s=round(ts.end_s, 3),
                                    speaker=speaker_at(ts.start_s, ts.end_s), source_text=text, no_speech_prob=ts.no_speech_prob))
            continue
        groups: list[tuple[str, list[TranscriptWord]]] = []
        for w in ts.words:
            spk = speaker_at(w.start_s, w.end_s)
            if groups and groups[-1][0] == spk:
                groups[-1][1].append(w)
            else:
                groups.append((spk, [w]))
        merged: list[tuple[str, list[TranscriptWord]]] = []
        for spk, words in groups:
            # a one-word speaker change inside a sentence is most likely a diarization blip
            if merged and (len(words) == 1 or merged[-1][0] == spk):
                merged[-1][1].extend(words)
            else:
                merged.append((spk, list(words)))
        if len(merged) > 1 and len(merged[0][1]) == 1:
            merged[1] = (merged[1][0], merged[0][1] + merged[1][1])
            merged.pop(0)
        for spk, words in merged:
            seg_text = "".join(w.text for w in words).strip() if len(merged) > 1 else text
            segments.append(Segment(
                id=len(segments), start_s=round(words[0].start_s, 3), end_s=round(words[-1].end_s, 3), speaker=spk,
                source_text=seg_text, words=[Word(start_s=w.start_s, end_s=w.end_s, text=w.text, probability=w.probability) for w in words],
                no_speech_prob=ts.no_speech_prob,
            ))
    ids = sorted({s.speaker for s in segments})
    speakers = [Speaker(id=i, name=i, speech_s=round(sum(s.duration_s for s in segments if s.speaker == i), 3)) for i in ids]
    return Script(source_language=transcript.language, language_probability=transcript.language_probability,
                  speakers=speakers, segments=segments)
