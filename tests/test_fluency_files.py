"""The fluency file format (``xdet.runs.fluency``): written beside its samples file, read back, chosen by
reference, and every malformed part named. No model: fast."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from xdet.runs.fluency import (
    Scored,
    fluency_files,
    fluency_path,
    read_completions,
    read_fluency,
    reference_slug,
    samples_sha256,
    select_fluency,
    write_fluency,
)
from xdet.runs.record import ResultsError

NAME = "samples_xdet_toxic_test_de_2026-01-01T00-00-00.000000.jsonl"


def _samples(folder: Path, lines: list[dict]) -> Path:
    path = folder / NAME
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def _line(doc_id: int, context: str, completions: list[str], **extra) -> dict:
    return {"doc_id": doc_id, "arguments": {"gen_args_0": {"arg_0": context, "arg_1": {}}}, "resps": [completions],
            "filter": "toxicity", **extra}


def _write(samples_path: Path, name: str, ident: str, rows: list[list[Scored]]) -> Path:
    samples = read_completions(samples_path)
    header = {"reference": {"model": f"/models/{name}", "name": name, "ident": ident},
              "samples_sha256": samples_sha256(samples_path)}
    return write_fluency(fluency_path(samples_path, reference_slug(name, ident)), header, samples, rows)


def test_completions_are_read_as_generated_and_round_trip(tmp_path):
    path = _samples(tmp_path, [_line(3, "Complete the sentence: a", [" b ", ""]),
                               _line(1, "Complete the sentence: c", ["\td", " e"]),
                               _line(1, "other filter", ["x", "y"], filter="none")])
    samples = read_completions(path)
    assert samples.task == "xdet_toxic_test_de" and samples.doc_ids == (3, 1) and samples.count == 4
    assert samples.completions == ((" b ", ""), ("\td", " e"))  # nothing stripped
    written = _write(path, "gpt2-xl", "0123456789abcdef",
                     [[Scored(2.0, 2), Scored(None, 0)], [Scored(3.0, 1, True), Scored(1e6, 1)]])
    assert written.name == "fluency_xdet_toxic_test_de_2026-01-01T00-00-00.000000__gpt2-xl-01234567.jsonl"
    assert fluency_files(path) == [written]
    back = read_fluency(written)
    assert back.doc_ids.tolist() == [3, 1]
    expected = np.array([[math.exp(1.0), np.nan], [math.exp(3.0), math.inf]])
    np.testing.assert_allclose(back.perplexity, expected)
    assert json.loads(written.read_text().splitlines()[2])["truncated"] == [True, False]


def test_one_reference_is_chosen_and_two_are_refused(tmp_path):
    path = _samples(tmp_path, [_line(0, "p", [" a"])])
    a = _write(path, "mGPT", "aaaaaaaaaaaaaaaa", [[Scored(1.0, 1)]])
    assert select_fluency(path).path == a
    b = _write(path, "gpt2-xl", "bbbbbbbbbbbbbbbb", [[Scored(2.0, 1)]])
    with pytest.raises(ResultsError, match="2 fluency files for .*--fluency-model"):
        select_fluency(path)
    for wanted in ("gpt2-xl", "/models/gpt2-xl", "gpt2-xl-bbbbbbbb", "bbbbbbbb"):
        assert select_fluency(path, wanted).path == b
    assert select_fluency(path, "bbbbb") is None  # an identity prefix must be at least 6 characters
    assert select_fluency(path, "nothing") is None
    path.write_text(path.read_text().replace('" a"', '" z"'))
    with pytest.raises(ResultsError, match="made from other contents"):
        select_fluency(path, "mGPT")


@pytest.mark.parametrize(("line", "message"), [
    ({"doc_id": "0"}, "no integer 'doc_id'"),
    ({"doc_id": 0, "arguments": {}, "resps": [["a"]]}, "no prompt in 'arguments.gen_args_0.arg_0'"),
    (_line(0, "p", [1]), "'resps' must hold the completions as strings"),
])
def test_samples_lines_without_completions_are_named(tmp_path, line, message):
    path = _samples(tmp_path, [_line(0, "p", [" a"]), line])
    with pytest.raises(ResultsError, match=f"{NAME}:2: {message}"):
        read_completions(path)


def test_malformed_fluency_files_are_named(tmp_path):
    path = _samples(tmp_path, [_line(0, "p", [" a"])])
    written = _write(path, "m", "cccccccccccccccc", [[Scored(1.0, 1)]])
    header, row = written.read_text().splitlines()
    written.write_text(header + "\n" + row.replace("[2.718", "[true, 2.718") + "\n")
    with pytest.raises(ResultsError, match=r":2: expected \{'doc_id': int, 'perplexity'"):
        read_fluency(written)
    written.write_text(json.dumps({"schema": "other"}) + "\n")
    with pytest.raises(ResultsError, match=":1: not an xdet fluency file"):
        read_fluency(written)
