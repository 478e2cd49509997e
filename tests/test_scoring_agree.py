"""``xdet scorer agree``: the agreement statistics, the input readers, and the command on real shared data."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from scipy.stats import pearsonr, spearmanr
from tiny_classifier import tiny_classifier_path

from xdet.validity.agree import agreement, read_csv, read_samples, read_texts
from xdet_tasks.errors import DataError
from xdet_tasks.suites.paradetox import load_pairs


def test_agreement_statistics_follow_their_definitions():
    a = [0.1, 0.9, 0.4, 0.7, 0.2, 0.6]
    same = agreement(a, a)
    assert same["spearman"] == pytest.approx(1.0) and same["pearson"] == pytest.approx(1.0)
    assert same["roc_auc"] == 1.0 and same["mean_diff"] == 0.0 and same["n"] == 6 and same["a_toxic"] == 3
    flipped = agreement(a, [1 - x for x in a])
    assert flipped["spearman"] == pytest.approx(-1.0) and flipped["roc_auc"] == 0.0
    b = [0.3, 0.5, 0.1, 0.8, 0.2, 0.9]
    row = agreement(a, b)
    assert row["spearman"] == pytest.approx(spearmanr(a, b).statistic)
    assert row["pearson"] == pytest.approx(pearsonr(a, b).statistic)
    assert row["mean_diff"] == pytest.approx(sum(b) / 6 - sum(a) / 6)
    # one class only / constant input: undefined, reported as None, never a made-up number
    assert agreement([0.1, 0.2], [0.3, 0.3])["roc_auc"] is None
    assert agreement([0.1, 0.2], [0.3, 0.3])["spearman"] is None
    assert agreement([], [])["n"] == 0


def _samples_line(doc_lang: str | None, completion: str, *, as_record: bool = True) -> str:
    record = json.dumps({"text": completion, "toxicity": 0.1, "scorer": "x@1"}) if as_record else completion
    doc = {"sentence": "prompt", **({"lang": doc_lang} if doc_lang else {})}
    return json.dumps({"doc_id": 0, "doc": doc, "resps": [[completion]], "filtered_resps": [[record]]})


def test_read_samples_takes_language_from_doc_or_task_name(tmp_path):
    path = tmp_path / "samples_xdet_toxic_test_de_2026-11-26T12-00-00.123456.jsonl"
    path.write_text("\n".join([
        _samples_line(None, "ein harmloser Satz"),
        _samples_line("es", "una frase tranquila"),
        _samples_line(None, "plain filter output", as_record=False),
    ]) + "\n")
    texts = read_samples(path)
    assert [(t.text, t.lang) for t in texts] == [
        ("ein harmloser Satz", "de"), ("una frase tranquila", "es"), ("plain filter output", "de"),
    ]
    anonymous = tmp_path / "run.jsonl"
    anonymous.write_text(_samples_line(None, "x") + "\n")
    with pytest.raises(DataError, match=r"run.jsonl:1: no language"):
        read_samples(anonymous)
    broken = tmp_path / "samples_xdet_toxic_test_en_2026-11-26T12-00-00.jsonl"
    broken.write_text(_samples_line(None, "ok") + "\n{not json\n")
    with pytest.raises(DataError, match=r":2: not a JSON line"):
        read_samples(broken)


def test_read_csv_needs_text_and_lang(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("sentence,language\nhello,en\n")
    with pytest.raises(DataError, match=r"bad.csv.*lacks column\(s\) lang, text"):
        read_csv(bad)
    empty_lang = tmp_path / "e.csv"
    empty_lang.write_text("text,lang\nhello,\n")
    with pytest.raises(DataError, match=r"e.csv:2: empty 'lang'"):
        read_csv(empty_lang)
    with pytest.raises(FileNotFoundError):
        read_texts([tmp_path / "missing.csv"])


@pytest.fixture
def classifier(tmp_path_factory, data_dir):
    return tiny_classifier_path(tmp_path_factory, data_dir)


def test_agree_local_vs_tiny_hf_on_shared_data(classifier, data_dir, tmp_path, capsys, monkeypatch):
    """The acceptance command: ``xdet scorer agree local hf:<tiny local classifier>`` on the real splits."""
    import xdet_tasks.scoring as scoring
    from xdet.cli import main

    monkeypatch.setattr(scoring, "_ACTIVE", {})
    table = tmp_path / "texts.csv"  # written under tmp only: the data never enters the repository
    with table.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "lang"])
        for lang in ("de", "hi", "zh"):
            for pair in load_pairs(lang, "test", data_dir=data_dir)[:25]:
                writer.writerow([pair.toxic, lang])
                writer.writerow([pair.neutral, lang])
    out = tmp_path / "agree.json"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main(["scorer", "agree", "local", f"hf:{classifier}", "--samples", str(table), "--json", str(out)])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    printed = capsys.readouterr().out
    assert "| lang" in printed and "Spearman" in printed and "ROC-AUC" in printed
    report = json.loads(out.read_text())
    assert [r["lang"] for r in report["per_language"]] == ["de", "hi", "zh"]
    assert report["overall"]["n"] == 150 and report["overall"]["unscored"] == 0
    assert report["a"]["backend"] == "local" and report["b"]["backend"] == "hf"
    for row in report["per_language"]:
        assert -1.0 <= row["spearman"] <= 1.0 and 0.0 <= row["roc_auc"] <= 1.0
    assert '"per_language"' not in printed  # the JSON goes to --json only


def test_agree_scores_completions_as_evaluation_does(data_dir, tmp_path, monkeypatch):
    """On a samples file, scorer A's scores are the ones evaluation recorded: empty completions (0 by rule
    in evaluation) are counted apart and sent to no scorer, the rest are scored stripped."""
    from xdet.cli import main
    from xdet_tasks.scoring.completions import score_completions

    monkeypatch.setenv("XDET_SCORER", "local")
    pairs = load_pairs("de", "test", data_dir=data_dir)[:12]
    completions = [p.toxic for p in pairs[:6]] + ["", "   "] + [f" {p.neutral}\n" for p in pairs[6:]]
    records = [r for (r,) in score_completions([[c] for c in completions], ["de"] * len(completions))]
    path = tmp_path / "samples_xdet_toxic_test_de_2026-11-27T12-00-00.jsonl"
    path.write_text("".join(
        json.dumps({"doc_id": i, "doc": {"sentence": "p"}, "resps": [[c]], "filtered_resps": [[json.dumps(r)]]}) + "\n"
        for i, (c, r) in enumerate(zip(completions, records, strict=True))
    ))
    out = tmp_path / "agree.json"
    assert main(["scorer", "agree", "local", "local", "--samples", str(path), "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["per_language"]
    assert (row["texts"], row["empty"], row["n"], row["unscored"]) == (14, 2, 12, 0)
    recorded = [r["toxicity"] for r in records]
    assert row["mean_a"] * row["n"] / row["texts"] == pytest.approx(sum(recorded) / len(recorded))
