"""Run-folder reader/writer, the paper-layout tables and ``xdet tables``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from xdet.cli import main
from xdet.runs import read_results
from xdet.runs.folder import read_run
from xdet.runs.record import ResultsError
from xdet.runs.writer import write_run
from xdet.tables.build import build_tables, missing_summary
from xdet.tables.metric_options import parse_metric_options
from xdet.tables.output import check_tables_dir, read_table_csv
from xdet.tables.render import csv_text, latex_text, markdown_text
from xdet_tasks.metrics.aggregation import aggregate
from xdet_tasks.names import task_name

TOX = "avg_toxicity"


def tox_task(lang: str, split: str = "toxic-test") -> str:
    return task_name("toxicity", split, lang)


def write(root: Path, name: str, strategy: str, values: dict[str, list], **kw) -> Path:
    """A run whose toxicity tasks have the given per-sample avg_toxicity values."""
    return write_run(
        root / name,
        model="org/tiny",
        model_name="tiny",
        strategy=strategy,
        samples={task: {TOX: v} for task, v in values.items()},
        **kw,
    )


def test_delta_is_zs_minus_ft_and_missing_stays_missing(tmp_path):
    rng = np.random.default_rng(1)
    zs_de, zs_en = rng.uniform(0, 100, 20), rng.uniform(0, 100, 20)
    ft_de = rng.uniform(0, 50, 20)
    write(tmp_path, "zs", "zs", {tox_task("de"): zs_de.tolist(), tox_task("en"): zs_en.tolist()})
    write(tmp_path, "xft-de", "x-ft", {tox_task("de"): ft_de.tolist()}, train_langs=["de"])
    (present,) = build_tables(read_results(tmp_path), n_boot=100)
    assert present.columns == ("de", "en") and present.rows == ("de",)  # what the runs hold, by default
    (table,) = build_tables(read_results(tmp_path), layout="paper", n_boot=100)

    assert (table.model, table.measure, table.split) == ("tiny", "toxicity", "toxic-test")
    assert table.columns == ("am", "ar", "de", "en", "es", "hi", "ru")
    assert table.rows_in("cross-lingual") == ("ar", "de", "en", "es", "hi", "ru", "zh")
    assert missing_summary([table]).startswith(f"{len(table.missing_cells())} missing cell(s): no run for row(s) ar, en")
    assert "; de has no value for am, ar, en, es, hi, ru (toxicity avg_toxicity toxic-test)" in missing_summary([table])
    assert table.value("ZS", "de") == pytest.approx(zs_de.mean())
    assert table.value("de", "de") == pytest.approx(zs_de.mean() - ft_de.mean())
    # no FT score for en, no run for ar, no zero-shot score for am: missing, never 0
    for row, col in [("de", "en"), ("ar", "de"), ("ZS", "am"), ("de", "AVG"), ("AVG", "de"), ("ZS", "AVG")]:
        assert table.value(row, col) is None, (row, col)
    (tmp_path / "t.csv").write_text(csv_text(table))
    cells = read_table_csv(tmp_path / "t.csv")
    assert cells[("de", "en")] is None and cells[("de", "de")] == pytest.approx(
        table.value("de", "de"), abs=1e-4
    )
    md = markdown_text(table)
    assert "| Δ ar " in md and "—" in md and "0.00" not in md
    assert "--" in latex_text(table)


def test_averages_need_every_cell_and_match_the_paper_definition(tmp_path):
    langs = ("am", "ar", "de", "en", "es", "hi", "ru")
    zs = {tox_task(c): [10.0 + i, 12.0 + i] for i, c in enumerate(langs)}
    write(tmp_path, "zs", "zs", zs)
    for k, src in enumerate(("ar", "de", "en", "es", "hi", "ru", "zh")):
        write(tmp_path, src, "x-ft", {t: [v - k for v in vals] for t, vals in zs.items()}, train_langs=[src])
    (table,) = build_tables(read_results(tmp_path), n_boot=0)
    assert table.value("ZS", "AVG") == pytest.approx(np.mean([11.0 + i for i in range(7)]))
    assert table.value("de", "AVG") == pytest.approx(1.0)  # Δ = ZS − FT = k for every column
    assert table.value("AVG", "es") == pytest.approx(np.mean(range(7)))
    assert table.missing_cells() == []
    assert table.zs["de"].lo is None  # n_boot=0: no intervals


def test_paired_bootstrap_interval(tmp_path):
    """FT = ZS − 3 on every document: the paired Δ interval collapses to 3; ZS's does not."""
    zs = np.random.default_rng(0).uniform(0, 100, 50)
    write(tmp_path, "zs", "zs", {tox_task("de"): zs.tolist()})
    write(tmp_path, "de", "x-ft", {tox_task("de"): (zs - 3).tolist()}, train_langs=["de"])
    runs = read_results(tmp_path)
    (t1,) = build_tables(runs, n_boot=300, seed=5)
    (t2,) = build_tables(runs, n_boot=300, seed=5)
    (t3,) = build_tables(runs, n_boot=300, seed=6)
    delta = t1.delta["de"]["de"]
    assert delta.value == pytest.approx(3.0)
    assert delta.lo == pytest.approx(3.0) and delta.hi == pytest.approx(3.0)
    z = t1.zs["de"]
    assert z.lo < z.value < z.hi and z.hi - z.lo > 5
    assert (t2.zs["de"].lo, t2.zs["de"].hi) == (z.lo, z.hi)  # seeded
    assert (t3.zs["de"].lo, t3.zs["de"].hi) != (z.lo, z.hi)


def test_weighted_perplexity_and_unscored_samples(tmp_path):
    task = task_name("perplexity", "neutral-test", "de")
    pairs = [[-10.0, 4], [-30.0, 6]]
    write_run(tmp_path / "zs", model="m", strategy="zs", samples={task: {"word_perplexity": pairs}})
    run = read_run(tmp_path / "zs")
    assert run.value(task, "word_perplexity") == pytest.approx(math.exp(40 / 10))
    s = run.samples(task, "word_perplexity")
    assert s.values.shape == (2, 2)
    assert aggregate("word_perplexity", s.values) == pytest.approx(math.exp(4))

    write(tmp_path, "tox", "zs", {tox_task("de"): [10.0, None, 30.0]})
    run = read_run(tmp_path / "tox")
    assert run.value(tox_task("de"), TOX) == pytest.approx(20.0)  # unscored left out, not 0
    assert np.isnan(run.samples(tox_task("de"), TOX).values[1])


def test_reader_merges_results_files_newest_wins(tmp_path):
    run_dir = write(
        tmp_path,
        "zs",
        "zs",
        {tox_task("de"): [10.0], tox_task("en"): [20.0]},
        timestamp="2025-01-01T00-00-00",
    )
    model_dir = next((run_dir / "lm_eval").iterdir())
    newer = json.loads(next(model_dir.glob("results_*.json")).read_text())
    newer["results"] = {tox_task("de"): {f"{TOX},toxicity": 55.0}}
    (model_dir / "results_2025-06-01T00-00-00.json").write_text(json.dumps(newer))
    with pytest.raises(ResultsError, match="no samples file from the invocation that wrote results_2025-06-01"):
        read_run(run_dir)  # the older invocation's samples are another run's values: never borrowed
    old = next(model_dir.glob(f"samples_{tox_task('de')}_*.jsonl")).read_text()
    (model_dir / f"samples_{tox_task('de')}_2025-06-01T00-00-00.jsonl").write_text(old.replace("10.0", "55.0"))
    run = read_run(run_dir)  # same settings: a rerun, and the newest counts
    assert run.value(tox_task("de"), TOX) == 55.0
    assert run.samples(tox_task("de"), TOX).values.tolist() == [55.0]
    assert run.value(tox_task("en"), TOX) == 20.0
    assert len(run.results_files) == 2


def test_corrupt_files_are_named(tmp_path):
    run_dir = write(tmp_path, "zs", "zs", {tox_task("de"): [10.0, 20.0]})
    results = next(run_dir.rglob("results_*.json"))
    results.write_text(results.read_text()[:40])
    with pytest.raises(ResultsError, match=r"results_.*\.json: corrupt or truncated JSON"):
        read_run(run_dir)

    run_dir = write(tmp_path, "zs2", "zs", {tox_task("de"): [10.0, 20.0]})
    samples = next(run_dir.rglob("samples_*.jsonl"))
    samples.write_text(samples.read_text()[:-15])
    with pytest.raises(ResultsError, match=r"samples_xdet_toxic_test_de_.*\.jsonl:2: corrupt"):
        read_run(run_dir).samples(tox_task("de"), TOX)

    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "xdet_run.json").write_text('{"model": "m", "strategy": "x-ft"}')
    with pytest.raises(ResultsError, match=r"bad/xdet_run.json: strategy 'x-ft' needs 'train_langs'"):
        read_run(tmp_path / "bad")


def test_unfinished_and_duplicate_runs(tmp_path):
    run_dir = write(tmp_path, "zs", "zs", {tox_task("de"): [10.0]})
    with pytest.raises(ResultsError, match="not empty"):
        write(tmp_path, "zs", "zs", {tox_task("de"): [10.0]})
    unfinished = tmp_path / "half"
    (unfinished / "lm_eval").mkdir(parents=True)
    assert [r.path for r in read_results(tmp_path)] == [run_dir]
    write(tmp_path, "zs-again", "zs", {tox_task("de"): [12.0]})
    with pytest.raises(ResultsError, match="two runs give model 'tiny' row 'ZS'"):
        build_tables(read_results(tmp_path))


def test_metric_options():
    assert parse_metric_options(["toxic_rate"])["toxicity"] == "toxic_rate"
    assert parse_metric_options(["perplexity=word_perplexity"])["perplexity"] == "word_perplexity"
    with pytest.raises(ResultsError, match="unknown metric; give a metric or MEASURE=METRIC"):
        parse_metric_options(["nonsense"])
    with pytest.raises(ResultsError, match=r"'toxic_rat': unknown metric \(did you mean toxic_rate\?\)"):
        parse_metric_options(["toxic_rat"])
    with pytest.raises(ResultsError, match="unknown measure"):
        parse_metric_options(["colour=avg_toxicity"])
    for typo in ("toxicity=avg_toxicty", "toxicity=", "perplexity=avg_toxicity"):  # a typo, none, wrong measure
        with pytest.raises(ResultsError, match=f"unknown {typo.split('=')[0]} metric"):
            parse_metric_options([typo])


def test_cli_writes_every_format_with_pft_mft_bars(tmp_path, capsys):
    res, out = tmp_path / "results", tmp_path / "tables"
    rng = np.random.default_rng(3)
    zs = {tox_task(c): rng.uniform(20, 60, 8).tolist() for c in ("de", "en", "es")}
    write(res, "zs", "zs", zs)
    write(res, "x-de", "x-ft", {t: [v - 5 for v in vals] for t, vals in zs.items()}, train_langs=["de"])
    for pct in (10, 20):
        write(res, f"p{pct}", "p-ft", {t: [v - pct / 5 for v in vals] for t, vals in zs.items()}, pct=pct)
    write(res, "m", "m-ft", {t: [v - 8 for v in vals] for t, vals in zs.items()})

    assert main(["tables", str(res), "--out", str(out), "--ci", "--n-boot", "200", "--paper-layout"]) == 0
    assert "1 table(s) from 5 run(s)" in capsys.readouterr().out
    stem = "tiny__toxicity__toxic-test"
    for suffix in (".csv", ".md", ".tex", ".png", "__pm-ft.png"):
        assert (out / f"{stem}{suffix}").is_file(), suffix
    assert check_tables_dir(out) == []
    cells = read_table_csv(out / f"{stem}.csv")
    assert cells[("p-ft 10%", "de")] == pytest.approx(2.0, abs=1e-4)
    assert cells[("m-ft", "es")] == pytest.approx(8.0, abs=1e-4)
    assert cells[("de", "am")] is None
    md = (out / f"{stem}.md").read_text()
    assert "Δ p-ft 20%" in md and "[" in md  # --ci shows intervals

    from matplotlib.image import imread

    img = imread(out / f"{stem}.png")
    assert img.ndim == 3 and img.shape[0] > 200 and np.ptp(img[..., :3]) > 0


def test_cli_error_names_file_and_writes_nothing(tmp_path, capsys):
    run_dir = write(tmp_path / "results", "zs", "zs", {tox_task("de"): [10.0]})
    results = next(run_dir.rglob("results_*.json"))
    results.write_text("{")
    out = tmp_path / "tables"
    assert main(["tables", str(tmp_path / "results"), "--out", str(out)]) == 2
    assert results.name in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("columns", [("de",), ("de", "en", "es")])
def test_heatmap_title_fits_the_figure(tmp_path, columns):
    """The narrowest heatmap (one column) with a long model name keeps its whole title inside the image."""
    from xdet.tables.render import heatmap_figure

    runs = tmp_path / "r"
    for name, strategy, langs in (("zs", "zs", []), ("x", "x-ft", ["de"])):
        write_run(runs / name, model="CohereForAI/aya-expanse-8b-with-a-long-fine-tuned-name", strategy=strategy,
                  train_langs=langs, samples={tox_task(c): {TOX: [20.0, 30.0]} for c in columns})
    (table,) = build_tables(read_results(runs), n_boot=0)
    fig = heatmap_figure(table)
    fig.canvas.draw()  # the Agg canvas lays the figure out as png_bytes does
    box, inside = fig._suptitle.get_window_extent(), fig.bbox
    assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and box.y1 <= inside.y1, (box, inside)
