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
    is_generation_samples,
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


def test_only_generation_samples_files_are_scored():
    ts = "2026-01-01T00-00-00.000000"
    assert is_generation_samples(Path(f"runs/samples_xdet_toxic_test_de_{ts}.jsonl"))
    assert not is_generation_samples(Path(f"runs/samples_xdet_ppl_toxic_test_de_{ts}.jsonl"))  # perplexity task
    assert not is_generation_samples(Path(f"runs/samples_xdet_nosuch_de_{ts}.jsonl"))  # not an xdet task
    assert not is_generation_samples(Path(f"runs/results_{ts}.json"))  # not a samples file


def test_reference_slugs_are_file_name_safe():
    ident = "0123456789abcdef"
    assert reference_slug("/models/My Model v2/", ident) == "models-My-Model-v2-01234567"
    assert reference_slug("..Xl-model..", ident) == "Xl-model-01234567"  # only '-' and '.' are stripped
    assert reference_slug(" /\t", ident) == "reference-01234567"  # nothing usable left of the name


def test_sample_lines_keep_contexts_order_and_skip_other_filters(tmp_path):
    path = _samples(tmp_path, [_line(5, "first prompt", [" a"]), _line(5, "filtered", ["b"], filter="none"),
                               _line(2, "second prompt", [" c", " d"])])
    samples = read_completions(path)
    assert samples.path == path and samples.doc_ids == (5, 2)  # a line of another filter is skipped, not the end
    assert samples.contexts == ("first prompt", "second prompt")
    assert samples.completions == ((" a",), (" c", " d"))
    other = tmp_path / "renamed.jsonl"
    other.write_text(path.read_text())
    assert read_completions(other).task == ""  # not named samples_<task>_<ts>: no task


@pytest.mark.parametrize(("lines", "message"), [
    ([_line(0, "p", [" a"]), _line(0, "q", [" b"])], ":2: doc_id 0 appears twice"),
    ([_line(0, "p", [" a"]), {"doc_id": 1, "arguments": ["p"], "resps": [["b"]]}],
     r":2: no prompt in 'arguments\.gen_args_0\.arg_0'"),
    ([_line(0, "p", [" a"]), _line(1, "p", [2])], r":2: 'resps' must hold the completions as strings, got \[\[2\]\]"),
    ([_line(0, "p", [" a"], filter="none")], ": no sample lines with completions"),
])
def test_inconsistent_samples_files_are_named(tmp_path, lines, message):
    path = _samples(tmp_path, lines)
    with pytest.raises(ResultsError, match=f"{NAME}{message}"):
        read_completions(path)


def test_corrupt_json_lines_are_named_as_results_errors(tmp_path):
    path = _samples(tmp_path, [_line(0, "p", [" a"])])
    written = _write(path, "m", "cccccccccccccccc", [[Scored(1.0, 1)]])
    text = written.read_text()
    path.write_text(path.read_text() + '{"doc_id": 1,\n')
    with pytest.raises(ResultsError, match=f"{NAME}:2: corrupt"):
        read_completions(path)
    written.write_text(text + '{"doc_id": 1,\n')
    with pytest.raises(ResultsError, match=":3: corrupt"):
        read_fluency(written)
    written.write_text("{" + text)
    with pytest.raises(ResultsError, match=":1: corrupt"):
        read_fluency(written)


def test_written_rows_keep_nll_tokens_and_null_perplexity(tmp_path):
    path = _samples(tmp_path, [_line(0, "p", [" a", ""])])
    written = _write(path, "m", "cccccccccccccccc", [[Scored(3.0, 2), Scored(None, 0)]])
    row = json.loads(written.read_text().splitlines()[1])  # strict JSON: no NaN token
    assert row == {"doc_id": 0, "nll": [3.0, None], "tokens": [2, 0], "perplexity": [math.exp(1.5), None],
                   "truncated": [False, False]}
    with pytest.raises(ValueError, match="zip"):  # one row of scores per document, no fewer
        _write(path, "n", "dddddddddddddddd", [])
    assert fluency_files(path) == [written]


def test_headers_are_readable_utf8_in_a_stable_key_order(tmp_path):
    path = _samples(tmp_path, [_line(0, "p", [" a"])])
    samples = read_completions(path)
    reference = {"name": "Modèl", "ident": "cccccccccccccccc"}
    a = write_fluency(tmp_path / "a.jsonl", {"reference": reference, "samples_sha256": "x"}, samples, [[Scored(1, 1)]])
    b = write_fluency(tmp_path / "b.jsonl", {"samples_sha256": "x", "reference": reference}, samples, [[Scored(1, 1)]])
    assert a.read_bytes() == b.read_bytes()
    assert '"name": "Modèl"' in a.read_text(encoding="utf-8")
    back = read_fluency(a)
    assert back.header == {"schema": "xdet-fluency/1", "reference": reference, "samples_sha256": "x"}
    values = back.values()
    assert values.doc_ids.tolist() == [0] and values.values.tolist() == [[math.e]] and values.path == a


def test_a_header_only_file_and_a_leading_blank_line_are_read(tmp_path):
    path = tmp_path / "fluency_x__m.jsonl"
    header = json.dumps({"schema": "xdet-fluency/1", "reference": {"ident": "c"}})
    path.write_text(header + "\n")
    empty = read_fluency(path)
    assert empty.perplexity.shape == (0, 0) and empty.doc_ids.dtype.kind == "i"
    path.write_text("\n" + header + "\n" + json.dumps({"doc_id": 4, "perplexity": [2.5, None]}) + "\n")
    back = read_fluency(path)
    assert back.doc_ids.tolist() == [4]
    np.testing.assert_array_equal(back.perplexity, [[2.5, np.nan]])


@pytest.mark.parametrize(("text", "message"), [
    ("", ": empty fluency file"),
    ('{"schema": "xdet-fluency/1", "reference": {"name": "m"}}\n', r":1: the header names no reference model"),
    ('{"schema": "xdet-fluency/1", "reference": {"ident": "c"}}\n[1, 2]\n', r":2: expected \{'doc_id'"),
    ('{"schema": "xdet-fluency/1", "reference": {"ident": "c"}}\n{"doc_id": "0", "perplexity": [1.0]}\n',
     r":2: expected \{'doc_id'"),
])
def test_malformed_headers_and_rows_are_named(tmp_path, text, message):
    path = tmp_path / "fluency_x__m.jsonl"
    path.write_text(text)
    with pytest.raises(ResultsError, match=f"fluency_x__m.jsonl{message}"):
        read_fluency(path)


def test_references_are_chosen_by_slug_and_six_character_ident_prefix(tmp_path):
    path = _samples(tmp_path, [_line(0, "p", [" a"])])
    odd = path.with_name(NAME.replace("toxic_test", "toxic__test"))  # a task name holding the separator
    odd.write_text(path.read_text())
    written = [_write(odd, f"m{i}", f"{i}" * 16, [[Scored(1.0, 1)]]) for i in range(4)]
    assert select_fluency(odd, "m2-22222222").path == written[2]  # the slug is after the last '__'
    assert select_fluency(odd, "333333").path == written[3]
    with pytest.raises(ResultsError) as err:
        select_fluency(odd)
    names = ", ".join(p.name for p in written[:3])
    assert f"4 fluency files for {odd.name} ({names}): choose" in str(err.value)
    odd.write_text(odd.read_text().replace('" a"', '" z"'))
    with pytest.raises(ResultsError, match=f"{written[1].name}: made from other contents of {odd.name} than it "
                                           "now holds; rerun xdet fluency on this folder to recompute it"):
        select_fluency(odd, "m1")
