"""The shape of the package (README "Architecture"): no import circle, contracts below backends and
stages, small files and functions, and a project made by an earlier layout reused as it is."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "lipdub"
DATA = Path(__file__).resolve().parent / "data" / "project_main_2026_12_th2"

#: Functions allowed over MAX_FUNCTION_LINES, with the reason.
LONG_FUNCTIONS: dict[tuple[str, str], str] = {}
#: lipdub modules that may be imported inside a function: they import an optional heavy package (torch) at
#: their top, and only the paths that need them should pay for it.
LAZY_MODULES = {
    "lipdub.backends.lipsync.wav2lip_model": "torch",
    "lipdub.qc.syncnet": "torch (only with --syncnet)",
    "lipdub.service.worker": "celery (only with LIPDUB_BROKER_URL)",
}
#: Modules whose functions may import lipdub lazily: the CLI keeps `lipdub --help` and each command's start-up fast.
LAZY_IMPORTERS = {"lipdub.cli"}
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        parts = list(f.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]):
    """``(target module, inside a function?)`` for every import of a lipdub module in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    in_func: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            in_func |= {id(n) for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))}
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # "from pkg import sub" imports the submodule; "from mod import name" the module
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
        for t in targets:
            if t in modules and t != name:
                yield t, id(node) in in_func


def _graph():
    modules = _modules()
    return modules, {m: list(_imports(m, p, modules)) for m, p in modules.items()}


def test_import_graph_has_no_cycle():
    _, graph = _graph()
    edges = {m: {t for t, _ in deps} for m, deps in graph.items()}
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    assert cycles == [], f"import circles: {cycles}"


def test_no_lipdub_import_inside_a_function_except_heavy_or_cli():
    _, graph = _graph()
    bad = [(m, t) for m, deps in graph.items() for t, inner in deps
           if inner and m not in LAZY_IMPORTERS and t not in LAZY_MODULES]
    assert bad == [], f"imports inside functions (move them to the top of the module): {bad}"


def test_contracts_import_no_backend_stage_or_pipeline():
    _, graph = _graph()
    upward = ("lipdub.backends", "lipdub.pipeline", "lipdub.cli", "lipdub.service", "lipdub.qc")
    bad = [(m, t) for m, deps in graph.items() if m.startswith("lipdub.contracts") for t, _ in deps if t.startswith(upward)]
    assert bad == []
    # backends and domain modules never import the runner or the CLI/service above them
    above = ("lipdub.pipeline", "lipdub.cli", "lipdub.service")
    bad = [(m, t) for m, deps in graph.items() if not m.startswith(above) and m != "lipdub.__main__"
           for t, _ in deps if t.startswith(above)]
    assert bad == [], f"imports upward into the runner / CLI / service: {bad}"


def test_files_and_functions_are_small():
    long_files, long_funcs = [], []
    for name, path in _modules().items():
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_FILE_LINES:
            long_files.append((name, len(text.splitlines())))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES and (name, node.name) not in LONG_FUNCTIONS:
                    long_funcs.append((name, node.name, n))
    assert long_files == [], f"files over {MAX_FILE_LINES} lines: {long_files}"
    assert long_funcs == [], f"functions over {MAX_FUNCTION_LINES} lines: {long_funcs}"


def test_every_stage_is_listed_once_with_a_version():
    from lipdub.pipeline.stages import LANGUAGE_STAGES, SOURCE_STAGES

    names = [s.name for s in (*SOURCE_STAGES, *LANGUAGE_STAGES)]
    assert len(names) == len(set(names))  # one record name each
    assert all(s.version >= 1 for s in (*SOURCE_STAGES, *LANGUAGE_STAGES))
    assert all(s.per_language for s in LANGUAGE_STAGES) and not any(s.per_language for s in SOURCE_STAGES)


def test_project_made_by_the_old_layout_is_reused(testdata, tmp_path):
    """A project directory written by main before the pipeline package (tests/data/.../README.md) keys
    every stage as it did: for each stage whose version is unchanged, today's input hash over that
    directory equals the recorded one, so a new run reuses the stage instead of recomputing it."""
    from lipdub.config import DubConfig
    from lipdub.languages import parse_language
    from lipdub.media.probe import probe
    from lipdub.pipeline.context import PipelineContext
    from lipdub.pipeline.hooks import PipelineHooks
    from lipdub.pipeline.stages import LANGUAGE_STAGES, SOURCE_STAGES
    from lipdub.project import Project, hash_json, sha256_file

    manifest = json.loads((DATA / "manifest.json").read_text())
    versions = json.loads((DATA / "stage_versions.json").read_text())
    assert set(versions) <= {s.name for s in (*SOURCE_STAGES, *LANGUAGE_STAGES)}  # stages are added, never dropped
    root = tmp_path / "th2_retalking_face1.lipdub"
    shutil.copytree(DATA, root)
    source = testdata / "th2_retalking_face1.mp4"
    # tts: the choice main's --tts auto made for Spanish; output: the path main wrote to (render keys on it)
    cfg = DubConfig(input=source, targets=["es"], output=Path(manifest["config"]["output"]), tts="espeak-ng")
    project = Project(root)
    ctx = PipelineContext(cfg, project, PipelineHooks(), source, probe(source), sha256_file(source), "render")
    lctx = ctx.for_language(parse_language("es"), parse_language("en"), cfg.output / "th2_retalking_face1.es.mp4")
    checked = []
    for stage, c in [*[(s, ctx) for s in SOURCE_STAGES], *[(s, lctx) for s in LANGUAGE_STAGES]]:
        if stage.name not in versions or stage.version != versions[stage.name]:
            continue  # added or changed on purpose since: computed anew
        rec = manifest["stages"][stage.record_name(c)]
        assert hash_json(stage.name, stage.version, stage.inputs(c)) == rec["input_hash"], stage.record_name(c)
        checked.append(stage.name)
    # diarize, faces and speakers (v2) changed on purpose for issue 18 (short turns, jump cuts, listeners at
    # rest, a track per shot), and transcribe (v2: deterministic decoding): recomputed
    assert {"ingest", "separate", "vad", "script"} <= set(checked)
