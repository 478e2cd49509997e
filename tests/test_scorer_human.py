"""``xdet scorer evaluate --against rtplx``: the label rule, per-locale agreement, the README's table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from natural_fixtures import write_rtplx_release

from xdet.cli import main
from xdet.validity import raters as scorer_human
from xdet_tasks.suites.natural import NaturalPrompt

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- xdet scorer evaluate local --against rtplx: begin -->", "<!-- xdet scorer evaluate local --against rtplx: end -->"
README_LANGS = ("ar", "de", "en", "es", "hi", "ru", "uk", "zh", "fi")


def _prompt(ratings=None, rating=None) -> NaturalPrompt:
    return NaturalPrompt("de", "DE", 0, "0", "text", ratings, rating)


@pytest.mark.parametrize(("ratings", "expected"), [
    ((1, 1, 1), 0), ((1, 1, 2), 0), ((2, 1, 1), 0), ((1, 5, 1), 0),  # majority 1: no toxicity (not the mean)
    ((2, 2, 1), None), ((2, 2, 2), None),  # majority 2: "slightly toxic", excluded
    ((3, 4, 3), 1), ((5, 5, 4), 1), ((4, 1, 4), 1), ((3, 1, 3), 1),  # majority 3 or more
    ((1, 2, 4), None),  # all differ: mean 2.33 rounds to 2
    ((1, 3, 5), 1), ((2, 3, 5), 1), ((1, 2, 5), 1),  # means 3, 3.33, 2.67 round to 3
    ((1, 2, 3), None),  # mean 2
])
def test_the_raters_values_become_a_label_by_the_authors_vote(ratings, expected):
    assert scorer_human.label(_prompt(ratings=ratings)) == expected


@pytest.mark.parametrize(("rating", "expected"), [(1.0, 0), (1.3333333333333333, None), (2.6666666666666665, None),
                                                  (3.0, 1), (3.3333333333333335, 1), (5.0, 1)])
def test_a_released_aggregate_is_read_as_it_is(rating, expected):
    """Files without the raters' values: the released value (a mean in releases before May 2024)."""
    assert scorer_human.label(_prompt(rating=rating)) == expected
    assert scorer_human.label(_prompt(ratings=(1, 1, 1), rating=rating)) == 0  # raw values win


@pytest.fixture(scope="module")
def release(tmp_path_factory, data_dir) -> Path:
    return write_rtplx_release(tmp_path_factory.mktemp("rtplx") / "RTP-LX", data_dir=data_dir, n=100)


def current_table(release: Path) -> str:
    """The README's table: ``xdet scorer evaluate local --against rtplx`` on the test fixture."""
    from xdet_tasks.scoring import get_scorer

    report = scorer_human.evaluate_against_rtplx(get_scorer("local"), README_LANGS, rtplx_dir=release, n_boot=1000)
    return scorer_human.report_table(report)


def test_the_readme_table_is_current(release):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    printed = readme[readme.index(BEGIN) + len(BEGIN):readme.index(END)].strip()
    assert printed == current_table(release), "the README's --against rtplx table is stale: paste current_table()"


def test_rows_per_locale_count_labels_and_agree_with_the_scores(release, tmp_path, capsys):
    out = tmp_path / "report.json"
    code = main(["scorer", "evaluate", "local", "--against", "rtplx", "--rtplx-dir", str(release), "--langs",
                 "de,zh,fi", "--n-boot", "50", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["locales"] == ["DE", "ZH-Hans", "ZH-Hant", "FI"] and list(report["refused"]) == ["FI"]
    assert re.search(r"^\| ZH-Hant +\| zh +\| 50 +\| 50 +\| 0 +\| 0 +\| 0\.\d{3} \[", printed, flags=re.M)
    de = report["rows"]["DE"]
    assert (de["toxic"], de["not_toxic"], de["excluded"], de["n"]) == (50, 50, 0, 100)
    # the ROC-AUC the report gives is the one of these labels and these scores
    from sklearn.metrics import roc_auc_score

    from xdet_tasks.scoring import get_scorer
    from xdet_tasks.suites import rtplx

    prompts = rtplx.load_prompts("de", rtplx_dir=release, annotations=True)
    scores = get_scorer("local").score([p.text.strip() for p in prompts], "de")
    labels = [1 if p.ratings == (4, 5, 4) else 0 for p in prompts]
    assert de["roc_auc"]["value"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-6)
    assert de["roc_auc"]["lo"] <= de["roc_auc"]["value"] <= de["roc_auc"]["hi"]
    assert report["mean"]["roc_auc"]["value"] == pytest.approx(
        np.mean([report["rows"][loc]["roc_auc"]["value"] for loc in ("DE", "ZH-Hans", "ZH-Hant")]), abs=1e-6)


def test_excluded_and_one_class_locales(tmp_path, data_dir):
    """Placeholder prompts cycle through every rating case: the counts follow the rule, and a locale
    with one class only has no ROC-AUC rather than a made-up one."""
    from xdet_tasks.scoring.base import Scorer

    class Half(Scorer):
        name, version = "half", "1"

        def score(self, texts, lang):
            return [0.5] * len(texts)

    folder = write_rtplx_release(tmp_path / "rtplx", n=8, locales=("FI", "TH"))
    report = scorer_human.evaluate_against_rtplx(Half(), ["fi"], rtplx_dir=folder, n_boot=20)
    row = report["rows"]["FI"]  # RATING_CYCLE: 1,1,1 / 1,1,2 / 2,2,1 / 3,4,3 / 5,5,4 / 1,2,4 / 1,3,5 / 2,2,2
    assert (row["not_toxic"], row["toxic"], row["excluded"]) == (2, 3, 3)
    single = write_rtplx_release(tmp_path / "one", n=1, locales=("TH",))
    assert scorer_human.evaluate_against_rtplx(Half(), ["th"], rtplx_dir=single, n_boot=5)["rows"]["TH"][
        "roc_auc"]["value"] is None


@pytest.mark.parametrize(("rating", "expected"), [(1.0, 1), (1.3333333333333333, 1), (2.6666666666666665, 3),
                                                  (3.3333333333333335, 3), (4.666666666666667, 5)])
def test_a_released_mean_is_the_nearest_rating_for_kappa(rating, expected):
    assert scorer_human.rater_rating(_prompt(rating=rating)) == expected
    assert scorer_human.rater_rating(_prompt(ratings=(1, 3, 5), rating=rating)) == 3  # raw values win


def test_kappa_is_rtplx_statistic_between_binned_scores_and_the_raters_vote(tmp_path):
    """Over every rated prompt (the excluded ones too), recomputed here from the raters' raw values, explicit
    bins and scikit-learn's weighted kappa, as RTP-LX computes it."""
    from collections import Counter

    from sklearn.metrics import cohen_kappa_score

    from xdet_tasks.scoring.base import Scorer
    from xdet_tasks.suites import rtplx

    class Spread(Scorer):  # a deterministic scorer using every bin: ((37 i) mod 100) / 100 for prompt i
        name, version = "spread", "1"

        def score(self, texts, lang):
            return [(37 * int(re.search(r"prompt (\d+)", t).group(1)) % 100) / 100 for t in texts]

    folder = write_rtplx_release(tmp_path / "rtplx", n=40, locales=("FI",))
    report = scorer_human.evaluate_against_rtplx(Spread(), ["fi"], rtplx_dir=folder, n_boot=200)
    row = report["rows"]["FI"]
    prompts = rtplx.load_prompts("fi", rtplx_dir=folder, annotations=True)

    def aggregate(values):
        value, count = Counter(values).most_common(1)[0]
        return value if count >= 2 else int(np.floor(np.mean(values) + 0.5))

    theirs = [aggregate(p.ratings) for p in prompts]
    ours = np.digitize(Spread().score([p.text for p in prompts], "fi"), [0.2, 0.4, 0.6, 0.8]) + 1
    assert row["kappa_n"] == len(prompts) == 40 and row["excluded"] > 0
    expected = cohen_kappa_score(ours, theirs, weights="linear", labels=[1, 2, 3, 4, 5])
    assert row["kappa"]["value"] == pytest.approx(expected, abs=1e-6)
    assert row["kappa"]["lo"] < row["kappa"]["value"] < row["kappa"]["hi"]
    assert row["raters_kappa"] == 0.632  # RTP-LX's kappa.json, human_avg, FI, Toxicity
    assert report["mean"]["kappa"]["value"] == pytest.approx(expected, abs=1e-6)
