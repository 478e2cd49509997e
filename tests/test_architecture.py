"""The house rules that keep the three packages apart and each vocabulary in one place."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: A lazy registry target: ``"package.module:Attribute"``.
_TARGET = re.compile(r"^xdet\w*(\.\w+)*:\w+$")
MAX_LINES = 450
#: package -> the packages it must never import (the application sits on training, training on tasks).
FORBIDDEN = {"xdet_tasks": ("xdet", "xdet_train"), "xdet_train": ("xdet",)}


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module an import statement or a lazy ``"module:attr"`` registry target names."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _TARGET.match(node.value):
            found.append((node.lineno, node.value.split(":")[0]))
    return found


def _violations(package: str) -> list[str]:
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top in FORBIDDEN[package]:
                out.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package):
    assert not _violations(package)


def test_the_import_audit_sees_a_wrong_import(tmp_path, monkeypatch):
    """A plugin module importing the application must be caught, lazily named targets included."""
    fake = tmp_path / "xdet_tasks"
    fake.mkdir()
    (fake / "bad.py").write_text("from xdet.runs import read_run\nTARGET = 'xdet_train.train:train_adapter'\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _violations("xdet_tasks") == ["xdet_tasks/bad.py:1 imports xdet.runs",
                                         "xdet_tasks/bad.py:2 imports xdet_train.train"]


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    """import-linter's contracts (pyproject.toml) on the packages under ``root``."""
    return subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], capture_output=True,
                          text=True, cwd=root, env=os.environ | {"PYTHONPATH": str(root)})


def test_import_contracts_hold():
    """One direction between the packages and no circle inside any of them (import-linter, as CI runs it)."""
    proc = _lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in proc.stdout


#: (file, line after which to plant, planted import, what lint-imports must then report)
_PLANTS = {
    "module circle": ("xdet_tasks/scoring/presets.py", "from __future__ import annotations\n",
                      "from xdet_tasks.scoring.registry import DEFAULT_SCORER  # noqa: F401\n",
                      "No cycles are allowed in xdet_tasks.scoring."),
    "package circle": ("xdet/runs/record.py", "from __future__ import annotations\n",
                       "import xdet.tables.render  # noqa: F401\n", "No cycles are allowed in xdet."),
    "function-level circle": ("xdet/sweep/matrix.py", "from __future__ import annotations\n",
                              "def _later():\n    from xdet.sweep.run import sweep  # noqa: F401\n",
                              "No cycles are allowed in xdet.sweep."),
    "upward import": ("xdet_tasks/metrics/aggregation.py", "from __future__ import annotations\n",
                      "import xdet.stats  # noqa: F401\n", "xdet_tasks is not allowed to import xdet"),
}


@pytest.mark.parametrize("plant", sorted(_PLANTS))
def test_a_planted_import_breaks_the_contracts(tmp_path, plant):
    path, marker, planted, expected = _PLANTS[plant]
    _copy_packages(tmp_path)
    _edit(tmp_path / path, marker, planted)
    proc = _lint_imports(tmp_path)
    assert proc.returncode == 1 and expected in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]


def _lazy_circles(graph) -> tuple[int, list[str]]:
    """Lazily registered ``"module:attr"`` targets whose module imports, at any depth, the module naming it."""
    checked, found = 0, []
    for package in FORBIDDEN:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            for line, target in _imports(path):
                if target.split(".")[0] not in FORBIDDEN or target not in graph.modules or ":" in target:
                    continue
                source = path.read_text(encoding="utf-8").splitlines()[line - 1]
                if f'"{target}:' not in source and f"'{target}:" not in source:
                    continue
                checked += 1
                chain = graph.find_shortest_chain(importer=target, imported=module)
                if chain:
                    found.append(" -> ".join(chain))
    return checked, found


def test_lazy_registry_targets_close_no_circle():
    """import-linter cannot see a scorer backend named by a string; its module must not import its registry."""
    import grimp

    graph = grimp.build_graph(*FORBIDDEN)
    checked, found = _lazy_circles(graph)
    assert checked >= 3 and not found
    graph.add_import(importer="xdet_tasks.scoring.hf", imported="xdet_tasks.scoring.registry")
    found = _lazy_circles(graph)[1]
    assert "xdet_tasks.scoring.hf -> xdet_tasks.scoring.registry" in found  # and through the backends built on hf:
    assert all(chain.endswith("xdet_tasks.scoring.hf -> xdet_tasks.scoring.registry") for chain in found), found


def test_no_source_file_is_over_the_limit():
    files = [p for d in ("xdet", "xdet_tasks", "xdet_train", "tests", "repro", "benchmarks")
             for p in (ROOT / d).rglob("*.py")]
    assert len(files) > 50
    long = {str(p.relative_to(ROOT)): n for p in files if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"files over {MAX_LINES} lines: {long}"


def test_packaged_paper_tables_are_the_transcription():
    """``tables/paper`` is the one source; the copy inside the package must be byte-identical."""
    from xdet.tables.paper import PACKAGE_DIR, SOURCE_DIR

    source = {p.name: p.read_bytes() for p in SOURCE_DIR.glob("*.csv")}
    packaged = {p.name: p.read_bytes() for p in PACKAGE_DIR.glob("*.csv")}
    assert len(source) == 25
    assert packaged == source, "run `python -m xdet.tables.paper` after editing tables/paper/"


# ------------------------------------------------------------------ one record per new thing


def test_a_new_strategy_is_one_record(monkeypatch, data_dir):
    """A strategy added at runtime is drawn, labelled, validated and expanded by the sweep like the others."""
    from xdet.sweep.matrix import enumerate_matrix
    from xdet_train import strategies

    def first_half(strategy, seed, data_dir):
        pairs = strategies.draw_all(strategy, seed, data_dir)
        return pairs[: len(pairs) // 2]

    record = strategies.StrategyRecord("half-ft", "the first half of one language", ("lang",), "sft", 7,
                                       first_half, "other", 5, "half {langs}")
    monkeypatch.setitem(strategies.STRATEGIES, "half-ft", record)
    tset = strategies.training_set("half-ft:de", data_dir=data_dir)
    assert len(tset) == 150 and tset.per_language() == {"de": 150}
    assert strategies.parse_strategy("half-ft:de").name == "half-ft:de"
    matrix = enumerate_matrix(["m"], ["half-ft"], train_langs=("de", "es"))
    assert [c.strategy for c in matrix] == ["half-ft:de", "half-ft:es"]


def test_a_new_strategy_runs_through_results_and_tables(monkeypatch, tmp_path):
    from xdet.runs.record import read_run_info
    from xdet.runs.writer import write_run
    from xdet.tables.build import row_label
    from xdet_train import strategies

    record = strategies.StrategyRecord("half-ft", "the first half", ("lang",), "sft", 7, strategies.draw_all,
                                       "other", 5, "half {langs}")
    monkeypatch.setitem(strategies.STRATEGIES, "half-ft", record)
    write_run(tmp_path / "r", model="m", samples={"xdet_toxic_test_de": {"avg_toxicity": [1.0, 2.0]}},
              strategy="half-ft", train_langs=["de"])
    assert row_label(read_run_info(tmp_path / "r")) == "half de"


def test_a_new_scorer_backend_is_one_registration(monkeypatch):
    """A backend registered at runtime scores completions through the task filter's code path."""
    from lm_eval.api.registry import Registry

    import xdet_tasks.scoring as scoring
    from xdet_tasks.scoring import registry
    from xdet_tasks.scoring.base import Scorer
    from xdet_tasks.scoring.completions import score_completions

    class LengthScorer(Scorer):
        name = "length"
        version = "1"

        @classmethod
        def from_spec(cls, arg: str) -> LengthScorer:
            return cls()

        def score(self, texts: Sequence[str], lang: str) -> list[float | None]:
            return [min(1.0, len(t) / 10) for t in texts]

    monkeypatch.setattr(registry, "BACKENDS", Registry("test scorer backend", base_cls=Scorer))
    monkeypatch.setattr(scoring, "_ACTIVE", {})
    monkeypatch.setenv("XDET_SCORER", "length")
    monkeypatch.setenv("XDET_SCORER_CACHE", "0")
    registry.register_backend("length", LengthScorer)
    records = score_completions([["abcde"], ["", "abcdefghijkl"]], ["de", "es"])
    assert [[r["toxicity"] for r in recs] for recs in records] == [[0.5], [0.0, 1.0]]
    assert records[0][0]["scorer"] == "length@1"


def _copy_packages(tmp_path: Path) -> None:
    for package in ("xdet", "xdet_tasks", "xdet_train"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")


def _edit(path: Path, marker: str, addition: str) -> None:
    """Insert ``addition`` right after ``marker``, which must occur once."""
    text = path.read_text(encoding="utf-8")
    assert text.count(marker) == 1, f"{marker!r} not found once in {path}"
    path.write_text(text.replace(marker, marker + addition), encoding="utf-8")


def _probe(tmp_path: Path, probe: str, **env: str) -> None:
    env = os.environ | {"PYTHONPATH": str(tmp_path)} | env
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(probe)], capture_output=True, text=True, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


#: The end of the last Language record, and of each suite's language list, in the copied sources.
_LAST_LANGUAGE = '"Latin+Cyrillic", "Indo-European"),\n'
_SUITE_LANGS = {"paradetox": '("am", "ar", "de", "en", "es", "hi", "ru", "uk", "zh"', "rtplx": '"sw", "th", "tr", "hbs"'}


def _add_language(tmp_path: Path, record: str, code: str, suite: str) -> None:
    """The recipe for a language: its record in languages.py and its code in the suites that have it."""
    _copy_packages(tmp_path)
    _edit(tmp_path / "xdet_tasks" / "languages.py", _LAST_LANGUAGE, f"    {record},\n")
    _edit(tmp_path / "xdet_tasks" / "suites" / "records.py", _SUITE_LANGS[suite], f", {code!r}")


def test_a_new_language_is_one_record(tmp_path):
    """A language of the paper's data: tasks, tags, YAMLs and the P-FT draw follow from its record."""
    _add_language(tmp_path, 'Language("tt", "Tatar", "Cyrillic", "Turkic")', "tt", "paradetox")
    _probe(tmp_path, """
        from xdet_tasks.names import collections, task_names
        from xdet_tasks.tasks._generate_configs import task_files
        from xdet_train.strategies import parse_strategy, pct_indices
        assert task_names(["tt"], ["gen"]) == ["xdet_toxic_train_tt", "xdet_toxic_test_tt", "xdet_neutral_test_tt"]
        assert "xdet_tt" in collections() and len(collections()["xdet"].tasks) == 30
        assert "tasks/xdet_pref_test_tt.yaml" in task_files()
        assert len(pct_indices(10, 42)["tt"]) == 30
        assert parse_strategy("x-ft:tt").langs == ("tt",)
        print("ok")
    """)


def test_a_new_natural_prompt_language_is_one_record(tmp_path):
    """A language of RTP-LX (a later release's Vietnamese): its task, tag, YAML and release file follow."""
    _add_language(tmp_path, 'Language("vi", "Vietnamese", "Latin", "Austroasiatic")', "vi", "rtplx")
    _probe(tmp_path, """
        from xdet_tasks.suites import rtplx
        from xdet_tasks.names import collections, task_names
        from xdet_tasks.tasks._generate_configs import task_files
        assert task_names(["vi"], ["gen"], ["rtplx"]) == ["xdet_rtplx_vi"]
        assert "xdet_rtplx_vi" in collections()["xdet_rtplx"].tasks
        assert "natural_tasks/xdet_rtplx_vi.yaml" in task_files()
        assert not [f for f in task_files() if f.endswith("_vi.yaml") and not f.startswith("natural_tasks/")]
        assert rtplx.language_locales("vi") == ["VI"] and rtplx.chosen_locales()["vi"] == "VI"
        print("ok")
    """)


#: The recipe's one record for a third natural-prompt suite (docs/ARCHITECTURE.md, "A natural-prompt suite").
_TOY_RECORD = """
        Suite("toy", "a throw-away suite", ("toy",), "{prompt}", "paper", True, "xdet_tasks.suites.toy",
              "nobody/toy", "tests/toy_suite.py", "none", ("de", "en")),"""


def test_a_new_natural_prompt_suite_is_one_module_and_one_record(tmp_path):
    """A third dataset: the loader module (a fixture) and its Suite record, nothing else edited. Its tasks,
    tag and group are generated, lm-eval loads its documents from the fixture, and xdet eval's data
    record hashes them."""
    _copy_packages(tmp_path)
    shutil.copy(ROOT / "tests" / "toy_suite.py", tmp_path / "xdet_tasks" / "suites" / "toy.py")
    _edit(tmp_path / "xdet_tasks" / "suites" / "records.py", '"pl", "pt", "sv")),', _TOY_RECORD)
    data = tmp_path / "toy-data"
    data.mkdir()
    for lang, texts in {"de": ["Du bist so", "Warum nur"], "en": ["You are such a", "Why would"]}.items():
        (data / f"{lang}.jsonl").write_text("".join(f'{{"text": "{t} "}}\n' for t in texts), encoding="utf-8")
    _probe(tmp_path, """
        import subprocess, sys
        from lm_eval.tasks import TaskManager, get_task_dict
        from xdet_tasks import NATURAL_TASK_DIR
        from xdet_tasks.names import collections, task_names
        from xdet_tasks.suites import natural
        from xdet.evaluate import data_record
        subprocess.run([sys.executable, "-m", "xdet_tasks.tasks._generate_configs"], check=True, capture_output=True)
        assert task_names(["de", "en"], ["gen"], ["toy"]) == ["xdet_toy_de", "xdet_toy_en"]
        assert collections()["xdet_toy"].tasks == ("xdet_toy_de", "xdet_toy_en")
        assert (NATURAL_TASK_DIR / "xdet_toy_en.yaml").is_file() and (NATURAL_TASK_DIR / "_xdet-avg-toy.yaml").is_file()
        assert [p.text for p in natural.load_prompts("toy", "de")] == ["Du bist so ", "Warum nur "]
        task = get_task_dict(["xdet_toy_en"], TaskManager(include_path=str(NATURAL_TASK_DIR)))["xdet_toy_en"]
        docs = list(task.test_docs())
        assert [task.doc_to_text(d) for d in docs] == ["You are such a", "Why would"]  # stripped, as every suite
        assert data_record(["xdet_toy_de"])["natural"]["toy"]["source"] == "folder"
        print("ok")
    """, XDET_TOY_DIR=str(data), XDET_SCORER="local")
