"""Stage 9: loudness normalization and true-peak limiting on real speech and music."""

from __future__ import annotations

import numpy as np
import pytest

from lipdub import mixing as mix_stage
from lipdub.errors import ConfigError



def test_normalize_hits_target_and_ceiling(speech_and_music):
    speech, music = speech_and_music
    loud = np.clip(np.repeat(speech[:, None], 2, axis=1) * 8.0, -1, 1) * 0.5 + music * 2.0  # hot, peaky input
    for target in (-24.0, -23.0, -16.0):
        out, rep = mix_stage.normalize_loudness(loud.astype(np.float32), 48000, target, -2.0)
        assert abs(mix_stage.integrated_loudness(out, 48000) - target) < 0.5
        assert mix_stage.true_peak_dbtp(out, 48000) <= -2.0 + 1e-6
        assert rep.true_peak_dbtp <= -2.0 + 1e-6


def test_limiter_only_touches_peaks(speech_and_music):
    speech, _ = speech_and_music
    x = np.repeat(speech[:, None], 2, axis=1).astype(np.float32)
    y, red = mix_stage.limit_true_peak(x * 4, 48000, -6.0)
    assert red > 0
    assert mix_stage.true_peak_dbtp(y, 48000) <= -6.0 + 0.05
    quiet = np.abs(x * 4).max(axis=1) < 0.1  # well under the ceiling and away from peaks: mostly unchanged
    assert np.median(np.abs(y[quiet] - x[quiet] * 4)) < 1e-4


def test_mix_places_lines_and_keeps_length(speech_and_music):
    speech, music = speech_and_music
    line = speech[: 48000 * 2]
    res = mix_stage.mix(
        [mix_stage.PlacedLine(1.0, line)], original=music, music_effects=music * 0.5, source_dialogue=None,
        sample_rate_hz=48000, duck_spans_s=[(1.0, 3.0)],
    )
    assert res.mix.shape == music.shape
    d = res.dialogue[:, 0]
    assert np.abs(d[: 48000 - 10]).max() == 0  # nothing before the line's start
    assert np.abs(d[48000:48000 * 3]).max() > 0
    assert abs(mix_stage.integrated_loudness(res.mix, 48000) + 24) < 1.0
    assert mix_stage.true_peak_dbtp(res.mix, 48000) <= -2.0


def test_ducking_without_separation(speech_and_music):
    speech, music = speech_and_music
    res = mix_stage.mix([mix_stage.PlacedLine(2.0, speech[:48000])], original=music, music_effects=None,
                        source_dialogue=None, sample_rate_hz=48000, duck_spans_s=[(2.0, 3.0)])
    bed = res.music_effects
    inside = np.sqrt(np.mean(bed[int(2.3 * 48000):int(2.7 * 48000)] ** 2))
    orig_inside = np.sqrt(np.mean(music[int(2.3 * 48000):int(2.7 * 48000)] ** 2))
    outside = np.sqrt(np.mean(bed[int(5 * 48000):int(6 * 48000)] ** 2))
    orig_outside = np.sqrt(np.mean(music[int(5 * 48000):int(6 * 48000)] ** 2))
    ducking_db = 20 * np.log10((inside / orig_inside) / (outside / orig_outside))
    assert ducking_db == pytest.approx(mix_stage.DUCK_DB, abs=1.5)


def test_bad_targets(speech_and_music):
    _, music = speech_and_music
    with pytest.raises(ConfigError):
        mix_stage.mix([], original=music, music_effects=None, source_dialogue=None, sample_rate_hz=48000, duck_spans_s=[], target_lufs=3)


def test_source_dialogue_kept_outside_the_lines(speech_and_music):
    """Laughs and reactions outside the transcribed lines stay (from the source dialogue stem); the
    source speech under a line is replaced by the dub."""
    speech, music = speech_and_music
    src_dialogue = np.repeat(speech[:, None], 2, axis=1).astype(np.float32)
    line = speech[48000 * 4: 48000 * 6]  # other words than the source has at 1-3 s
    kw = dict(original=music + src_dialogue, music_effects=music, source_dialogue=src_dialogue,
              sample_rate_hz=48000, duck_spans_s=[(1.0, 3.0)])
    res = mix_stage.mix([mix_stage.PlacedLine(1.0, line)], **kw)
    post = 10 ** (res.loudness.gain_db / 20)
    out, src = res.dialogue[:, 0], src_dialogue[:, 0] * post
    far = slice(int(5.0 * 48000), int(8.0 * 48000))  # well outside the span and its ramps
    np.testing.assert_allclose(out[far], src[far], atol=1e-6)
    inside = slice(int(1.2 * 48000), int(2.8 * 48000))
    dub_only = mix_stage.mix([mix_stage.PlacedLine(1.0, line)], **kw, keep_nonverbal=False)
    post_dub = 10 ** (dub_only.loudness.gain_db / 20)  # each mix has its own loudness gain
    np.testing.assert_allclose(out[inside] / post, dub_only.dialogue[inside, 0] / post_dub, atol=1e-5)  # no source speech under the line
    assert res.details["source_dialogue_kept_s"] > 5.0 and dub_only.details["source_dialogue_kept_s"] == 0.0
    assert np.abs(dub_only.dialogue[far, 0]).max() == 0


def test_block_meter_equals_pyloudnorm_on_real_media(speech_and_music, monkeypatch):
    """The block-wise meter (lipdub.meter) gives pyloudnorm's whole-array integrated loudness and
    LRA, and the block-wise limiter the same samples whatever its block size."""
    import pyloudnorm

    from lipdub import meter

    speech, music = speech_and_music
    x = (np.repeat(speech[:, None], 2, axis=1) * 0.5 + music).astype(np.float32)
    whole = pyloudnorm.Meter(48000)
    ref_lufs, ref_lra = whole.integrated_loudness(x.astype(np.float64)), whole.loudness_range(x.astype(np.float64))
    for block in (4_801, 100_003, len(x)):  # odd sizes: blocks end inside gating blocks and filter taps
        m = meter.measure(x, 48000, block_samples=block, loudness_range=True)
        assert m.integrated_lufs() == pytest.approx(ref_lufs, abs=1e-9)
        assert m.loudness_range_lu() == pytest.approx(ref_lra, abs=1e-9)
    hot = x * 6
    monkeypatch.setattr(mix_stage, "BLOCK_SAMPLES", len(hot) + 1)
    one, red_one = mix_stage.limit_true_peak(hot, 48000, -2.0)
    monkeypatch.setattr(mix_stage, "BLOCK_SAMPLES", 9_601)
    blocks, red_blocks = mix_stage.limit_true_peak(hot, 48000, -2.0)
    assert red_one > 0
    np.testing.assert_allclose(blocks, one, atol=1e-6)
    assert red_blocks == pytest.approx(red_one, abs=1e-4)


def _stems(tmp_path, speech, music, passes=3):
    """Real speech over real music written as the project's 48 kHz float WAV stems (``passes`` of
    the clips: a longer programme than one block), and lines placed over it."""
    from lipdub.audio import write_audio

    sd = np.tile(np.repeat(speech[:, None], 2, axis=1), (passes, 1)).astype(np.float32) * 0.5
    me = np.tile(music, (passes, 1)).astype(np.float32)
    for name, x in (("original", me + sd), ("me", me), ("sd", sd)):
        write_audio(tmp_path / f"{name}.wav", x, 48000)
    lines = [mix_stage.PlacedLine(0.7, speech[: 48000 * 2] * 3), mix_stage.PlacedLine(len(speech) / 48000 + 1.3, speech[48000 * 3: 48000 * 6])]
    spans = [(0.5, 3.0), (len(speech) / 48000 + 1.0, len(speech) / 48000 + 4.5)]
    return me + sd, me, sd, lines, spans


def _whole_array_mix(lines, original, me, sd, spans, target_lufs, ceiling_dbtp, sr=48000):
    """The mix as the stage defines it, written plainly on whole arrays with pyloudnorm and scipy
    (no lipdub code): an independent oracle for the block chain. Returns ``(dialogue, bed, mix, gain_db)``."""
    import pyloudnorm
    from scipy.ndimage import minimum_filter1d, uniform_filter1d
    from scipy.signal import resample_poly

    def lufs(x):
        return pyloudnorm.Meter(sr).integrated_loudness(np.asarray(x, np.float64))

    def envelope(x):  # true peak per sample, 4x oversampled (BS.1770-4 Annex 2)
        return np.maximum(np.abs(resample_poly(x, 4, 1, axis=0)).reshape(len(x), 4, -1).max(axis=(1, 2)), np.abs(x).max(axis=1))

    n = len(me if me is not None else original)
    fade = int(mix_stage.FADE_S * sr)
    ramp = np.linspace(0, 1, fade, dtype=np.float32)
    dub = np.zeros(n, np.float32)
    for line in lines:
        s = line.samples.astype(np.float32).copy()
        s[:fade] *= ramp
        s[-fade:] *= ramp[::-1]
        a = round(line.start_s * sr)
        dub[a:a + len(s)] += s[:n - a]
    mask = np.zeros(n, np.float32)
    for a, b in spans:
        mask[int(a * sr):int(b * sr)] = 1.0
    mask = uniform_filter1d(mask, int(mix_stage.DUCK_RAMP_S * sr), mode="constant")
    ref = lufs(sd) if sd is not None else lufs(np.concatenate([original[int(a * sr):int(b * sr)] for a, b in spans]))
    dub *= np.float32(10 ** ((ref - lufs(dub)) / 20))
    dialogue = np.repeat(dub[:, None], 2, axis=1)
    if me is not None:
        bed = me
        dialogue += sd * (1.0 - mask)[:, None]
    else:
        bed = original * (10 ** (mix_stage.DUCK_DB * mask / 20)).astype(np.float32)[:, None]
    full = dialogue + bed
    half, ceiling = int(mix_stage.LIMITER_LOOKAHEAD_S * sr), 10 ** ((ceiling_dbtp - 0.1) / 20)
    gain_db, measured = 0.0, lufs(full)
    for _ in range(4):
        gain_db += target_lufs - measured
        y = full * np.float32(10 ** (gain_db / 20))
        need = np.minimum(1.0, ceiling / np.maximum(envelope(y), 1e-12))
        g = uniform_filter1d(minimum_filter1d(need, 2 * half + 1, mode="nearest"), 2 * half + 1, mode="nearest")
        y = y * np.minimum(g, need).astype(np.float32)[:, None]
        measured = lufs(y)
        if abs(measured - target_lufs) <= 0.1:
            break
    tp = 20 * np.log10(envelope(y).max())
    if tp > ceiling_dbtp:
        y = y * np.float32(10 ** ((ceiling_dbtp - tp - 0.05) / 20))
    post = np.float32(10 ** (gain_db / 20))
    return dialogue * post, bed * post, y, gain_db


@pytest.mark.parametrize("separated", [True, False])
def test_mix_chain_from_arrays_and_files_equals_a_whole_array_mix(speech_and_music, tmp_path, monkeypatch, separated):
    """The one mix chain, fed arrays (mixing.mix) or WAV files (mixing.mix_files, the stage's), gives
    the same samples and figures, and those of the mix written plainly on whole arrays (pyloudnorm,
    scipy), with the limiter working (a hot target) and blocks that cut lines and ramps."""
    from lipdub.audio import read_audio

    speech, music = speech_and_music
    original, me, sd, lines, spans = _stems(tmp_path, speech, music)
    kw = {"duck_spans_s": spans, "target_lufs": -9.0}
    monkeypatch.setattr(mix_stage, "BLOCK_SAMPLES", 48000 * 2 + 7)
    arrays = mix_stage.mix(lines, original=original, music_effects=me if separated else None,
                           source_dialogue=sd if separated else None, sample_rate_hz=48000, **kw)
    outs = {k: tmp_path / f"out_{k}.wav" for k in ("dialogue", "me", "mix")}
    rep, details = mix_stage.mix_files(lines, original=tmp_path / "original.wav", music_effects=tmp_path / "me.wav" if separated else None,
                                       source_dialogue=tmp_path / "sd.wav" if separated else None, outputs=outs, **kw)
    ref_dialogue, ref_bed, ref_mix, ref_gain_db = _whole_array_mix(lines, original, me if separated else None,
                                                                   sd if separated else None, spans, -9.0, -2.0)
    assert rep.limiter_max_reduction_db > 1.0
    assert rep.gain_db == pytest.approx(ref_gain_db, abs=1e-6)
    for k, got_array, ref in (("dialogue", arrays.dialogue, ref_dialogue), ("me", arrays.music_effects, ref_bed),
                              ("mix", arrays.mix, ref_mix)):
        got, sr = read_audio(outs[k])
        assert sr == 48000 and got.shape == ref.shape == got_array.shape
        assert np.array_equal(got, got_array)  # arrays or files: one chain, the same samples
        np.testing.assert_allclose(got, ref, atol=1e-5)
    for f in ("integrated_lufs", "true_peak_dbtp", "loudness_range_lu", "gain_db", "limiter_max_reduction_db"):
        assert getattr(rep, f) == pytest.approx(getattr(arrays.loudness, f), abs=1e-6)
    assert details == arrays.details
    assert arrays.details["source_dialogue_kept_s"] > (5.0 if separated else -1.0)


def test_block_mix_holds_a_block_not_the_programme(speech_and_music, tmp_path, monkeypatch):
    """The stage's mix never holds a whole-length stem: with 1 s blocks, the most memory it allocates
    at once (tracemalloc, which numpy reports to) is about the same for a programme three times as
    long, and less than one stem of the longer one (the whole-array mix holds several)."""
    import tracemalloc

    speech, music = speech_and_music
    monkeypatch.setattr(mix_stage, "BLOCK_SAMPLES", 48000)
    peaks, sizes = [], []
    for passes in (2, 6):
        d = tmp_path / str(passes)
        d.mkdir()
        original, _, _, lines, spans = _stems(d, speech, music, passes)
        sizes.append(original.nbytes)
        del original
        outs = {k: d / f"out_{k}.wav" for k in ("dialogue", "me", "mix")}
        tracemalloc.start()
        try:
            mix_stage.mix_files(lines, original=None, music_effects=d / "me.wav", source_dialogue=d / "sd.wav",
                              duck_spans_s=spans, outputs=outs)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert peaks[1] < 1.3 * peaks[0]
    assert peaks[1] < sizes[1]
