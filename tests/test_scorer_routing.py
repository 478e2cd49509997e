"""A scorer per language (``--scorer 'a|b'``) and validity cards shown wherever toxicity is shown.

Two real scorers with different coverage: ``local`` (the paper's nine languages) and the tiny ``hf:``
classifier declared for Swahili only (``#langs=sw``), so a run of RTP-LX's German and Swahili prompts
needs both.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from natural_fixtures import write_rtplx_release
from tiny_classifier import tiny_classifier_path

from xdet.cli import main
from xdet.runs.folder import read_run
from xdet.runs.record import read_run_record
from xdet_tasks.errors import ScorerError
from xdet_tasks.scoring import get_scorer
from xdet_tasks.scoring.completions import parse_record

TEXTS = ["du bist ein idiot", "danke für die hilfe", "mambo vipi rafiki", ""]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, data_dir) -> Path:
    return tiny_classifier_path(tmp_path_factory, data_dir)


@pytest.fixture(scope="module")
def release(tmp_path_factory, data_dir) -> Path:
    return write_rtplx_release(tmp_path_factory.mktemp("rtplx") / "RTP-LX", data_dir=data_dir, n=60,
                               locales=("DE", "EN", "SW"))


@pytest.fixture(scope="module")
def routed_run(tmp_path_factory, tiny_model, release, classifier) -> Path:
    """``xdet eval`` of RTP-LX German and Swahili, each language scored by the first scorer covering it."""
    from xdet.evaluate import run_eval

    out = tmp_path_factory.mktemp("routed") / "run"
    return run_eval(str(tiny_model("llama")), out, tasks=["xdet_rtplx_de", "xdet_rtplx_sw"], limit=2, protocol="paper",
                    repeats=2, scorer=f"local|hf:{classifier}#langs=sw", sources={"XDET_RTPLX_DIR": str(release)},
                    device="cpu")


@pytest.fixture
def card_cache(tmp_path, monkeypatch, tmp_path_factory) -> Path:
    """An empty validity-card cache (``XDET_CACHE_DIR`` of its own), sharing the session's trained local scorer."""
    import os

    shared = Path(os.environ["XDET_CACHE_DIR"])
    cache = tmp_path / "cache"
    cache.mkdir()
    get_scorer("local")  # trained (or loaded) in the shared cache first
    (cache / "local-scorer").symlink_to(shared / "local-scorer", target_is_directory=True)
    monkeypatch.setenv("XDET_CACHE_DIR", str(cache))
    monkeypatch.delenv("XDET_VALIDITY_CARDS", raising=False)
    return cache


def test_each_language_goes_to_the_first_listed_scorer_that_covers_it(classifier, monkeypatch):
    both = f"hf:{classifier}#langs=de+sw"
    local, hf = get_scorer("local"), get_scorer(both)
    first_hf, first_local = get_scorer(f"{both}|local"), get_scorer(f"local|{both}")
    assert first_hf.for_language("de").ident == hf.ident != local.ident  # both cover de: the first listed wins
    assert first_local.for_language("de").ident == local.ident
    assert first_local.for_language("sw").ident == hf.ident  # only the second covers sw
    for lang, expected in (("de", local), ("sw", hf)):  # the scores are that scorer's own
        assert first_local.score(TEXTS, lang) == expected.score(TEXTS, lang)
    import os

    from xdet_tasks.scoring.completions import score_completions
    os.environ["XDET_SCORER"] = f"local|{both}"  # the plugin's scorer (the fixture restores it after the test)
    records = score_completions([TEXTS[:2], TEXTS[2:]], ["de", "sw"])
    assert {r["scorer"] for r in records[0]} == {local.ident} and {r["scorer"] for r in records[1]} == {hf.ident}
    assert [r["toxicity"] for r in records[0]] == local.score(TEXTS[:2], "de")


def test_coverage_is_read_from_the_specs_and_an_unneeded_scorer_is_never_built(tmp_path):
    missing = f"hf:{tmp_path / 'no-such-classifier'}#langs=sw"
    routed = get_scorer(f"{missing}|local")  # building the hf scorer would fail: it is not needed for de
    assert routed.for_language("de").ident == get_scorer("local").ident
    with pytest.raises(ScorerError, match="cannot find model"):
        routed.check_language("sw")  # needed now: built, and its failure is named (not read as "does not cover")
    with pytest.raises(ScorerError) as err:
        get_scorer(f"local|{missing}").check_language("fi")
    assert str(err.value).startswith(f"no scorer of 'local|{missing}' covers language 'fi' (local: am ar de en")
    assert f"{missing}: sw)" in str(err.value)


@pytest.mark.parametrize(("spec", "message"), [
    ("local|", "an empty scorer in the '|' list"), ("local||local", "an empty scorer"),
    ("local|local", "local listed twice"), ("local|bert", "unknown scorer backend 'bert'"),
])
def test_a_bad_routing_list_is_refused_in_one_line(spec, message):
    with pytest.raises(ScorerError, match=message) as err:
        get_scorer(spec)
    assert "\n" not in str(err.value)


def test_a_routed_run_records_each_languages_scorer_everywhere(routed_run, classifier):
    local, hf = get_scorer("local").ident, get_scorer(f"hf:{classifier}#langs=sw").ident
    expected = {"de": local, "sw": hf}
    for lang, ident in expected.items():  # every completion record
        (samples,) = routed_run.glob(f"lm_eval/**/samples_xdet_rtplx_{lang}_*.jsonl")
        for line in samples.read_text().splitlines():
            assert {parse_record(r)["scorer"] for r in json.loads(line)["filtered_resps"][0]} == {ident}
    (results,) = routed_run.glob("lm_eval/**/results_*.json")  # lm-eval's file: each task's config names its own
    from xdet.runs.settings import task_scorer, task_settings

    data = json.loads(results.read_text())
    for lang, ident in expected.items():
        prov = task_scorer(data["configs"][f"xdet_rtplx_{lang}"])
        assert f"{prov['backend']}@{prov['version']}" == ident
        assert task_settings(data, f"xdet_rtplx_{lang}")["scorer"] == ident
        assert read_run(routed_run).settings[f"xdet_rtplx_{lang}"]["scorer"] == ident
        assert read_run(routed_run, from_samples=True).settings[f"xdet_rtplx_{lang}"]["scorer"] == ident
    record = read_run_record(routed_run)["scorer"]  # the run record: the list, the rule, each language's scorer
    assert record["backend"] == "routed" and record["routing"] == ["local", f"hf:{classifier}#langs=sw"]
    assert {lang: f"{p['backend']}@{p['version']}" for lang, p in record["languages"].items()} == expected
    from xdet.tables.summary import run_summary

    summary = run_summary(read_run(routed_run))
    assert f"de: backend=local, version={local.split('@', 1)[1]}" in summary and "sw: backend=hf" in summary
    assert "de unvalidated; sw unvalidated" in summary


def test_an_old_results_file_reads_as_before():
    from xdet.runs.settings import task_scorer
    from xdet_tasks.scoring.completions import PROVENANCE_PREFIX

    one = {"backend": "local", "version": "v1", "attribute": "TOXICITY"}
    config = {"dataset_kwargs": {"lang": "de"},
              "filter_list": [{"filter": [{"provenance": PROVENANCE_PREFIX + json.dumps(one)}]}]}
    assert task_scorer(config) == one
    old_text = {"dataset_kwargs": {"lang": "de"},
                "filter_list": [{"filter": [{"provenance": PROVENANCE_PREFIX + "backend=local, version=v1"}]}]}
    assert task_scorer(old_text) == {"backend": "local", "version": "v1"}


def _tables(run: Path, out: Path, *extra: str, capsys) -> str:
    assert main(["tables", str(run), "--out", str(out), "--n-boot", "0", "--no-png", *extra]) == 0
    capsys.readouterr()
    (md,) = [p for p in out.glob("*toxicity*rtplx*.md")]
    return md.read_text(encoding="utf-8")


def _shown(lang: str, k: dict) -> str:
    """A language's κ as captions print it (two decimals, the interval in brackets)."""
    return f"{lang} {k['value']:.2f} [{k['lo']:.2f}, {k['hi']:.2f}]"


def _save(release: Path, spec: str, langs: str, capsys) -> dict:
    assert main(["scorer", "evaluate", spec, "--against", "rtplx", "--rtplx-dir", str(release), "--langs", langs,
                 "--n-boot", "50", "--save"]) == 0
    printed = capsys.readouterr().out
    paths = [line.split(": ", 1)[1] for line in printed.splitlines() if line.startswith("validity card: ")]
    assert paths
    return {p: json.loads(Path(p).read_text()) for p in paths}


def test_saved_cards_show_in_table_captions_and_the_eval_summary(routed_run, release, classifier, card_cache,
                                                                 tmp_path, capsys):
    from xdet.tables.summary import run_summary
    from xdet.validity import raters

    md = _tables(routed_run, tmp_path / "before", capsys=capsys)
    local, hf = get_scorer("local").ident, get_scorer(f"hf:{classifier}#langs=sw").ident
    assert f"scorer: de: {local}; sw: {hf} (AVG averages languages scored by different scorers)" in md
    assert "weak below 0.4): de unvalidated; sw unvalidated" in md
    # measure local on German and English (the fixture's German κ is below the floor, English above it)
    (card,) = _save(release, "local", "de,en", capsys).values()
    report = raters.evaluate_against_rtplx(get_scorer("local"), ["de", "en"], rtplx_dir=release, n_boot=50)
    assert card["ident"] == local and card["locales"]["DE"]["kappa"] == report["rows"]["DE"]["kappa"]
    de, en = (card["locales"][loc]["kappa"]["value"] for loc in ("DE", "EN"))
    assert de < 0.4 <= en
    shown = _shown("de", card["locales"]["DE"]["kappa"]) + " weak; sw unvalidated"
    assert shown in _tables(routed_run, tmp_path / "after", capsys=capsys)
    assert shown in run_summary(read_run(routed_run))
    # a routing list's evaluation saves one card per scorer, each with the languages that scorer scored
    cards = _save(release, f"local|hf:{classifier}#langs=sw", "sw,de", capsys)
    assert sorted(c["ident"] for c in cards.values()) == sorted([local, hf])
    assert {c["ident"]: sorted(c["locales"]) for c in cards.values()} == {local: ["DE", "EN"], hf: ["SW"]}


def test_a_shipped_card_is_shown_for_exactly_its_scorer(routed_run, release, card_cache, tmp_path, capsys,
                                                        monkeypatch):
    (path,) = _save(release, "local", "de", capsys)  # a real measurement, then shipped as a file
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    shutil.copy(path, shipped / "local.json")
    shutil.rmtree(card_cache / "validity-cards")  # this machine has no card of its own now
    shown = _shown("de", json.loads((shipped / "local.json").read_text())["locales"]["DE"]["kappa"]) + " weak"
    assert "de unvalidated" in _tables(routed_run, tmp_path / "none", capsys=capsys)
    assert shown in _tables(routed_run, tmp_path / "flag", "--validity-cards", str(shipped), capsys=capsys)
    monkeypatch.setenv("XDET_VALIDITY_CARDS", str(shipped / "local.json"))
    assert shown in _tables(routed_run, tmp_path / "env", capsys=capsys)
    # the same backend at another version is another scorer: its card does not apply
    card = json.loads((shipped / "local.json").read_text())
    backend, version = card["ident"].split("@", 1)
    card["ident"] = f"{backend}@{version[:-1]}{'1' if version[-1] != '1' else '2'}"
    (shipped / "local.json").write_text(json.dumps(card))
    assert "de unvalidated" in _tables(routed_run, tmp_path / "other", capsys=capsys)


def test_analyze_shows_the_validity_of_each_tables_scorers(card_cache, release, tmp_path, capsys):
    import numpy as np

    from xdet.analyze import run_analysis, write_outputs
    from xdet.analyze.inputs import DeltaMatrix
    from xdet.analyze.report import scorer_validity, validity_lines

    (card,) = _save(release, "local", "de", capsys).values()
    local = get_scorer("local").ident
    matrix = DeltaMatrix("t1", "m", "toxic_rate", "toxicity", "rtplx", ("de", "en"), ("de", "en", "ru"),
                         np.array([[1.0, 2.0, 3.0], [0.5, 1.0, 2.0]]), scorers={"de": local, "en": local, "ru": "hf@x"})
    validity = scorer_validity([matrix])
    (line,) = validity_lines(validity)
    assert line.endswith(_shown("de", card["locales"]["DE"]["kappa"]) + " weak; en unvalidated; ru unvalidated (t1)")
    results = run_analysis([matrix], n_perm=10, max_exact=10, n_boot=10)
    written = write_outputs(results, tmp_path / "analysis", validity=validity)
    assert line in written[1].read_text() and json.loads(written[0].read_text())["scorer_validity"] == validity
