"""Bad input through the ``xdet`` CLI: a clear message naming the file/field/value, exit 2, nothing written.

Each case runs the real command in-process (``xdet.cli.main``); one case also runs the installed
console script to show the exit status reaches the shell.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from xdet.cli import main


@dataclass
class Case:
    name: str
    #: builds the inputs in tmp_path and returns (argv, env overrides, the path that must stay absent)
    setup: Callable[[Path, Path, Callable[[str], Path]], tuple[list[str], dict[str, str], Path | None]]
    message: str


def _copy_de(data_dir: Path, tmp: Path) -> Path:
    out = tmp / "splits"
    out.mkdir()
    for f in data_dir.glob("de_*.csv"):
        shutil.copy(f, out / f.name)
    return out


def _rows(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as fh:
        return [r[0] for r in csv.reader(fh)]


def _write(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, quoting=csv.QUOTE_ALL).writerows(rows)


def _eval(model: str | Path, tmp: Path, *extra: str, tasks: str = "xdet_ppl_toxic_test_de") -> list[str]:
    return ["eval", "--model", str(model), "--out", str(tmp / "run"), "--tasks", tasks, "--limit", "2", *extra]


def _data_case(mutate: Callable[[Path], None]):
    def setup(tmp, data_dir, model):
        splits = _copy_de(data_dir, tmp)
        mutate(splits)
        return _eval(model("llama"), tmp, "--data-dir", str(splits)), {}, tmp / "run"
    return setup


def _drop_file(d: Path) -> None:
    (d / "de_test_toxic.csv").unlink()


def _extra_column(d: Path) -> None:
    p = d / "de_test_toxic.csv"
    rows = [[r] for r in _rows(p)]
    rows[6].append("second column")
    _write(p, rows)


def _mismatch(d: Path) -> None:
    p = d / "de_test_neutral.csv"
    _write(p, [[r] for r in _rows(p)[:90]])


def _empty(d: Path) -> None:
    p = d / "de_test_toxic.csv"
    rows = [[r] for r in _rows(p)]
    rows[9] = [""]
    _write(p, rows)


def _latin1(d: Path) -> None:
    p = d / "de_test_toxic.csv"
    p.write_bytes(p.read_bytes().replace(b"\n", b"\n\xff", 1))


def _results_truncated(tmp, data_dir, model):
    from xdet.runs import write_run

    run = tmp / "results" / "zs"
    write_run(run, model="m", strategy="zs", samples={"xdet_toxic_test_de": {"avg_toxicity": [10.0, 20.0]}})
    (results_file,) = run.glob("**/results_*.json")
    results_file.write_text(results_file.read_text()[:40])
    return ["tables", str(tmp / "results"), "--out", str(tmp / "tables")], {}, tmp / "tables"


def _adapter_without_manifest(tmp, data_dir, model):
    adapter = tmp / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    return _eval(model("llama"), tmp, "--peft", str(adapter)), {}, tmp / "run"


def _adapter_other_base(tmp, data_dir, model):
    from xdet_train.config import TrainConfig
    from xdet_train.train import train_adapter

    adapter = train_adapter(str(model("llama")), "x-ft:de", tmp / "adapter",
                            TrainConfig(max_steps=1, eval_examples=0), progress=False)
    return _eval(model("bloom"), tmp, "--peft", str(adapter)), {}, tmp / "run"


CASES = [
    Case("missing data directory",
         lambda tmp, d, m: (_eval(m("llama"), tmp, "--data-dir", str(tmp / "nope")), {}, tmp / "run"),
         "nope' (from XDET_DATA_DIR) does not exist"),
    Case("missing split file", _data_case(_drop_file), "de_test_toxic.csv: missing split file"),
    Case("wrong column count", _data_case(_extra_column), "de_test_toxic.csv:7: expected exactly one column, found 2"),
    Case("toxic/neutral row-count mismatch", _data_case(_mismatch), "de_test_neutral.csv has 90"),
    Case("empty sentence", _data_case(_empty), "de_test_toxic.csv:10: empty sentence"),
    Case("non-UTF-8 file", _data_case(_latin1), "de_test_toxic.csv:2: not valid UTF-8"),
    Case("unknown language code",
         lambda tmp, d, m: (["eval", "--model", "x", "--out", str(tmp / "run"), "--langs", "de,xx"], {}, tmp / "run"),
         "unknown language code 'xx'"),
    Case("unknown task",
         lambda tmp, d, m: (_eval(m("llama"), tmp, tasks="xdet_toxic_test_xx"), {}, tmp / "run"),
         "unknown task or group 'xdet_toxic_test_xx'"),
    Case("unknown strategy",
         lambda tmp, d, m: (["train", "--model", str(m("llama")), "--strategy", "z-ft:de", "--out", str(tmp / "a")],
                            {}, tmp / "a"),
         "unknown strategy 'z-ft:de'"),
    Case("percentage outside (0, 100]",
         lambda tmp, d, m: (["train", "--model", str(m("llama")), "--strategy", "p-ft:150", "--out", str(tmp / "a")],
                            {}, tmp / "a"),
         "percentage 150 must be in (0, 100]"),
    Case("adapter directory without a manifest", _adapter_without_manifest, "xdet_adapter.json: missing adapter manifest"),
    Case("adapter trained on another base model", _adapter_other_base, "trained on"),
    Case("results folder with a truncated JSON file", _results_truncated, "results_"),
    Case("XDET_SCORER names an unknown backend",
         lambda tmp, d, m: (_eval(m("llama"), tmp, tasks="xdet_toxic_test_de"), {"XDET_SCORER": "bert"}, tmp / "run"),
         "XDET_SCORER='bert': unknown scorer backend 'bert'"),
    Case("Perspective asked for Amharic",
         lambda tmp, d, m: (_eval(m("llama"), tmp, tasks="xdet_toxic_test_am"),
                            {"XDET_SCORER": "perspective", "PERSPECTIVE_API_KEY": "k-test-not-real"}, tmp / "run"),
         "Perspective does not support TOXICITY in language 'am'"),
    Case("Perspective key missing",
         lambda tmp, d, m: (_eval(m("llama"), tmp, tasks="xdet_toxic_test_de"), {"XDET_SCORER": "perspective"},
                            tmp / "run"),
         "PERSPECTIVE_API_KEY"),
    Case("output path not writable",
         lambda tmp, d, m: ((tmp / "file").write_text("x") and _eval(m("llama"), tmp / "file"), {}, tmp / "file" / "run"),
         "not writable"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_clearly(case, tmp_path, data_dir, tiny_model, monkeypatch, capsys):
    from xdet_tasks import scoring

    argv, env, must_not_exist = case.setup(tmp_path, data_dir, tiny_model)
    capsys.readouterr()  # drop what building the inputs printed
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(scoring, "_ACTIVE", {})  # a fresh scorer for this case's environment
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"xdet {argv[0]}: error: "), err
    assert case.message in last, err
    assert "Traceback" not in err
    if must_not_exist is not None:
        leftovers = [p for p in must_not_exist.rglob("*")] if must_not_exist.is_dir() else []
        assert not leftovers, f"half-written output: {leftovers[:5]}"


def test_console_script_exit_status(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "xdet", "eval", "--model", "m", "--out", str(tmp_path / "r"), "--langs", "qq"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "unknown language code 'qq'" in proc.stderr


def test_corrupt_run_record_is_named(tmp_path, tiny_model, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "xdet_run.json").write_text('{"schema": "xdet-run/1", "model"')
    assert main(_eval(tiny_model("llama"), tmp_path)) == 2
    assert "xdet_run.json: corrupt run record" in capsys.readouterr().err
