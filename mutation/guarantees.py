"""Break each promise of the README's Guarantees table on purpose and check that its test fails.

For every row, one or more planted bugs (an exact text replacement in the code that keeps the promise)
are applied one at a time; the tests the row names run against the broken code; the file is restored.
A plant whose tests still pass means the row's test does not prove its promise. Results go to
stdout as a Markdown table (pasted into MUTATION.md).

    .venv/bin/python mutation/guarantees.py [--only ID ...] [--list]

Run from the repository root with a clean working tree: files are edited in place and restored
(also on Ctrl-C). Not part of CI: it reruns slow tests (the sweep, interrupts) once per plant.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Plant:
    id: str
    row: str  # the Guarantees row, shortened
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    what: str  # the bug in words


PLANTS = [
    Plant("bad-input", "bad input: one line, exit 2, nothing created", "xdet/cli.py",
          "        return 2\n    except KeyboardInterrupt:", "        return 1\n    except KeyboardInterrupt:",
          ("tests/test_bad_input.py::test_bad_input_is_refused_clearly",), "a refused input exits 1, not 2"),
    Plant("corrupt-record", "bad input: a corrupt run record is named", "xdet/runs/record.py",
          '        raise ResultsError(f"{path}: corrupt run record ({err}); delete the folder to redo the run") from None',
          "        raise", ("tests/test_bad_input.py::test_corrupt_run_record_is_named",),
          "a corrupt xdet_run.json escapes as a JSON traceback"),
    Plant("data-line", "bad input: data errors name file and line", "xdet_tasks/suites/paradetox.py",
          'raise DataError(f"{path}:{line}: empty sentence")', 'raise DataError(f"{path}: empty sentence")',
          ("tests/test_data.py::test_empty_sentence_names_file_and_line",), "the line number is left out"),
    Plant("lm-eval-line", "plain lm_eval: one xdet: line first", "xdet_tasks/preflight.py",
          'log.error("xdet: %s", err)', 'log.error("%s", err)', ("tests/test_plain_lm_eval_errors.py",),
          "the error line loses its xdet: prefix"),
    Plant("ctrl-c", "Ctrl-C: one line, exit 130, resumable", "xdet/cli.py", "        return 130", "        return 1",
          ("tests/test_interrupt.py",), "Ctrl-C exits 1"),
    Plant("conventions", "every task meets lm-eval's conventions", "xdet_tasks/tasks/utils.py",
          '"sentence": getattr(p, kind).strip()}', '"sentence": getattr(p, kind)}',
          ("tests/test_task_conventions.py::test_task_follows_lm_eval_conventions",),
          "sentences are no longer stripped: some prompts end in whitespace"),
    Plant("architecture", "imports go one way", "xdet_tasks/metrics/aggregation.py", "import numpy as np\n",
          "import numpy as np\n\nimport xdet.stats  # noqa: F401\n", ("tests/test_architecture.py",),
          "xdet_tasks imports xdet"),
    Plant("hub-seed", "the hub protocol is the authors' (seed 42)", "xdet_tasks/suites/paradetox.py", "HUB_SHUFFLE_SEED = 42",
          "HUB_SHUFFLE_SEED = 43",
          ("tests/test_data.py::test_hub_source_with_authors_protocol_matches_released_files",), "shuffle seed 43"),
    Plant("hub-stale", "an edited local hub folder is never served stale", "xdet_tasks/suites/paradetox.py",
          "return _load_hub_rows(dataset, revision, lang, folder_fingerprint(dataset))",
          'return _load_hub_rows(dataset, revision, lang, folder_fingerprint(dataset) and "same")',
          ("tests/test_data.py::test_edited_local_hub_folder_is_never_served_stale",),
          "the cache key ignores the folder's content"),
    Plant("repro-zero", "repro --results comparing zero cells fails", "repro/test_repro_compare.py",
          "    if compared:\n        return", "    if True:\n        return", ("tests/test_repro_guard.py",),
          "the guard accepts zero compared cells"),
    Plant("shape-rows", "shape mode fails shuffled rows", "xdet/tables/shape.py",
          "        if self.spearman is None or self.spearman < t.spearman_min:", "        if False:",
          ("repro/test_repro_compare.py::test_shape_mode_fails_a_table_whose_rows_are_shuffled",),
          "the Spearman criterion is never applied"),
    Plant("from-samples", "every number rebuilds from samples alone", "xdet_tasks/metrics/aggregation.py",
          'kind == "total" else np.where(count > 0, total / np.maximum(count, 1)',
          'kind == "total" else np.where(count > 0, total / np.maximum(count + 1, 1)', ("tests/test_from_samples.py",),
          "the rebuilt mean divides by n + 1"),
    Plant("retry-429", "random 429/503/timeouts leave results identical", "xdet_tasks/scoring/perspective.py",
          "RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})", "RETRY_STATUSES = frozenset({500, 502, 503, 504})",
          ("tests/test_reliability.py::test_random_429_503_and_timeouts_leave_results_identical",), "429 not retried"),
    Plant("never-zero", "faults outlasting retries are never a silent 0", "xdet_tasks/scoring/perspective.py",
          'return self._unscored(kind, f"{last} after {self.options.attempts} attempts")',
          'return self._unscored(kind, f"{last} after {self.options.attempts} attempts") or 0.0',
          ("tests/test_reliability.py::test_faults_outlasting_retries_exit_2_or_report_unscored",
           "tests/test_scoring_perspective.py::test_retries_exhausted_leave_texts_unscored_never_zero"),
          "an exhausted text scores 0.0"),
    Plant("resume", "scoring killed at random points resumes", "xdet_tasks/scoring/cache.py",
          "self.cache.put_many(*key, [(order[j], value)])",
          "self.cache.put_many(*key, [(order[j], value)] if j == len(order) - 1 else [])",
          ("tests/test_scoring_cache.py::test_a_crash_mid_run_keeps_every_score_already_returned",
           "tests/test_reliability.py::test_scoring_killed_at_random_points_resumes_to_the_uninterrupted_result"),
          "only the last score of a call is stored"),
    Plant("sweep-kill", "a killed sweep resumes to identical tables, each result once", "xdet/sweep/configuration.py",
          "        remove_partials(settings.adapter_dir(cfg).parent, settings.adapter_dir(cfg).name)"
          "  # left by a killed run\n", "",
          ("tests/test_sweep.py::test_killed_sweep_resumes_to_identical_tables",),
          "the half-trained adapter of a killed training is left behind"),
    Plant("atomic", "every write goes through the atomic helper", "xdet_tasks/scoring/preset_files.py",
          "atomic_write_json(lock_path(name), record)", "lock_path(name).write_text(json.dumps(record))",
          ("tests/test_atomic_writes.py",), "the revision lock is written in place"),
    Plant("record-last", "xdet_run.json is the last file a run writes", "xdet/evaluate.py",
          "            complete_run(out, info)\n",
          "            complete_run(out, info)\n            tracker.save_results_aggregated(results=results, samples=samples)\n",
          ("tests/test_eval.py::test_run_record_is_the_last_file_written",), "a results file is written after the record"),
    Plant("redo", "an interrupted run is redone from scratch", "xdet/evaluate.py",
          "                shutil.rmtree(out / LM_EVAL_DIR, ignore_errors=True)  # leftovers of an interrupted run\n", "",
          ("tests/test_eval.py::test_interrupted_run_is_redone_from_scratch",),
          "a killed run's leftover results file is kept beside the new one"),
    Plant("zero-calls", "a re-run makes zero scorer calls", "xdet_tasks/scoring/cache.py",
          "cached = self.cache.get_many(*key, hashes)", "cached = {}",
          ("tests/test_scoring_cache.py::test_second_call_makes_zero_backend_calls",
           "tests/test_scoring_perspective.py::test_task_rerun_makes_zero_perspective_requests"), "the cache is never read"),
    Plant("key", "the Perspective key appears nowhere", "xdet_tasks/scoring/perspective.py",
          '            "do_not_store": True,\n        }',
          '            "do_not_store": True, "key": os.environ.get("PERSPECTIVE_API_KEY"),\n        }',
          ("tests/test_reliability.py::test_key_appears_in_no_output_or_file_on_any_perspective_path",
           "tests/test_reliability.py::test_key_appears_nowhere_after_a_sweep_and_a_scorer_agreement",
           "tests/test_scoring_perspective.py::test_key_never_reaches_logs_exceptions_or_files"),
          "the key is written into the provenance"),
    Plant("determinism", "same seed on CPU: identical results", "xdet/evaluate.py", "torch_random_seed=seed,",
          "torch_random_seed=None,", ("tests/test_determinism.py::test_two_runs_with_one_seed_are_identical",),
          "torch's generator is not seeded"),
    Plant("train-seed", "same seed on CPU: identical adapters", "xdet_train/sft.py",
          "    set_seed(seed)  # LoRA A is initialised randomly\n", "",
          ("tests/test_train.py::test_training_is_deterministic_for_a_seed",), "LoRA's random init is not seeded"),
    Plant("cache-2proc", "two processes share the cache without loss", "xdet_tasks/scoring/cache.py",
          '"INSERT OR IGNORE INTO scores VALUES', '"INSERT INTO scores VALUES',
          ("tests/test_scoring_cache.py::test_several_processes_write_at_once_without_losing_rows",),
          "a concurrent duplicate key aborts a writer's transaction"),
    Plant("cli-help", "every option shows its default", "xdet/commands/flags.py",
          'options["help"] = text if "default" in text else f"{text} (default: {shown})"', 'options["help"] = text',
          ("tests/test_cli_help.py",), "generated flags lose their default"),
    # ---- this round's rows
    Plant("ci-level", "statistics match independent references", "xdet/stats.py", "CI_LEVEL = 0.95", "CI_LEVEL = 0.90",
          ("tests/test_statistics_references.py",), "every interval is a 90 % interval (the bug that once passed)"),
    Plant("ece-edge", "statistics match independent references", "xdet/validity/heldout.py",
          "idx = np.minimum(np.floor(s * bins).astype(int), bins - 1)",
          "idx = np.minimum(np.ceil(s * bins).astype(int) - 1, bins - 1).clip(0)",
          ("tests/test_statistics_references.py",), "ECE bins closed on the right instead of the left"),
    Plant("p-ties", "statistics match independent references", "xdet/analyze/permutation.py",
          "hits = int(np.count_nonzero(ext >= ext[0] - _tolerance(ext)))",
          "hits = int(np.count_nonzero(ext > ext[0] + _tolerance(ext))) + 1",
          ("tests/test_statistics_references.py",), "permutation ties counted against the observed value"),
    Plant("emt", "statistics match independent references", "xdet_tasks/metrics/toxicity.py",
          '"exp_max_toxicity": float(arr.max() * SCALE)', '"exp_max_toxicity": float(arr[-1] * SCALE)',
          ("tests/test_statistics_references.py",), "EMT takes the last sample, not the maximum"),
    Plant("tokenizer", "the default scorer is the shared task's", "xdet_tasks/scoring/presets.py",
          '            tokenizer="cardiffnlp/twitter-xlm-roberta-large-2022",\n', "",
          ("tests/test_official_scorer.py",), "textdetox loads the classifier folder's tokenizer"),
    Plant("max-length", "the default scorer is the shared task's", "xdet_tasks/scoring/presets.py",
          "            max_length=512,\n", "", ("tests/test_official_scorer.py",),
          "the tokenizer's own limit (128 here) instead of 512"),
    Plant("class", "the default scorer is the shared task's", "xdet_tasks/scoring/hf.py",
          "probs = torch.softmax(logits, dim=-1)[:, self.label_index]",
          "probs = 1 - torch.softmax(logits, dim=-1)[:, 1 - self.label_index]",
          ("tests/test_official_scorer.py",), "toxicity as 1 - P(neutral) (equal only up to rounding)"),
    Plant("no-tokenizer", "the default scorer is the shared task's", "xdet_tasks/scoring/hf.py",
          "if not has_tokenizer_files(tokenizer_folder):", "if False:", ("tests/test_official_scorer.py",),
          "a folder without tokenizer files gets transformers' all-<unk> tokenizer"),
    Plant("cache-key", "the default scorer is the shared task's", "xdet_tasks/scoring/hf.py",
          "        if self.tokenizer_ref:  # the score-cache key", "        if False:  # the score-cache key",
          ("tests/test_official_scorer.py",), "the score-cache version ignores the tokenizer"),
    Plant("in-sample", "scorer evaluate: thresholds from other pairs", "xdet/validity/heldout.py",
          "threshold, _ = best_threshold(y[~held_out], s[~held_out])", "threshold, _ = best_threshold(y, s)",
          ("tests/test_statistics_references.py::test_crossfitting_removes_the_optimism_of_a_fitted_threshold",),
          "each fold's threshold fitted on all pairs, itself included"),
    Plant("interval", "scorer evaluate: no interval excludes its point", "xdet/validity/heldout.py",
          "lo, hi = bias_corrected_interval(reps, point, LEVEL)",
          "lo, hi = bias_corrected_interval(reps, float(np.median(reps)), LEVEL)",
          ("tests/test_scorer_eval.py::test_intervals_contain_their_point_where_resampling_biases_the_statistic",),
          "the uncorrected percentile interval"),
    Plant("shape-sign", "each repro criterion fails alone", "xdet/tables/shape.py",
          "        if self.sign_agreement is not None and self.sign_agreement < t.sign_agreement_min:",
          "        if False:", ("tests/test_repro_criteria.py",), "shape mode ignores the sign share"),
    Plant("complete", "each repro criterion fails alone", "xdet/tables/compare.py",
          "if t.require_complete and self.missing:", "if False:", ("tests/test_repro_criteria.py",),
          "exact mode ignores require_complete"),
    Plant("prompt", "the prompts are the paper's", "xdet_tasks/suites/prompts.py",
          'PROMPT_TEMPLATE = "Complete the sentence: {sentence}"',
          'PROMPT_TEMPLATE = "Complete this sentence: {sentence}"',
          ("tests/test_prompts.py", "tests/test_task_configs.py"), "one word of the paper's prompt changed"),
    Plant("split", "the prompts are the paper's", "xdet_tasks/suites/prompts.py", "round(len(units) * fraction)",
          "int(len(units) * fraction)", ("tests/test_prompts.py",), "halves rounded down, not to even"),
    # ---- issue 25: concurrent runs on one folder, the score cache on a network filesystem
    Plant("claim", "two sweeps on one folder: each configuration once", "xdet/claims.py",
          "                _try_claim(path, me, notify)\n                break", "                break",
          ("tests/test_concurrency.py::test_two_sweeps_on_one_folder_run_each_configuration_once",),
          "nothing is claimed"),
    Plant("takeover", "a dead process's claim is taken over", "xdet/claims.py",
          "                why = stale_reason(owner, age)", "                why = None",
          ("tests/test_concurrency.py::test_an_ended_reused_or_zombie_process_on_this_machine_is_taken_over_at_once",
           "tests/test_concurrency.py::test_an_owner_that_cannot_be_checked_holds_until_its_heartbeat_stops",
           "tests/test_concurrency.py::test_a_slurm_jobs_claim_holds_while_the_job_is_in_the_queue"),
          "an abandoned claim is waited on for ever"),
    Plant("release", "Ctrl-C leaves no claim", "xdet/claims.py",
          "    try:\n        yield\n    finally:\n        with _HELD_LOCK:\n            del _HELD[folder]",
          "    yield\n    if True:\n        with _HELD_LOCK:\n            del _HELD[folder]",
          ("tests/test_interrupt.py::test_sweep_interrupted_then_resumed",),
          "a claim is released only when its work succeeds"),
    Plant("mountinfo", "the cache folder's filesystem is read right", "xdet_tasks/scoring/filesystems.py",
          'if best is None or len(mp) >= len(best.mount_point.rstrip("/") or "/"):', "if best is None:",
          ("tests/test_filesystems.py",), "the first mount above a path wins, not the deepest"),
    Plant("layout", "network filesystems get per-process files", "xdet_tasks/scoring/cache.py",
          "found = network_filesystem_of(folder, mountinfo)", "found = None",
          ("tests/test_scoring_cache.py::test_the_layout_follows_the_cache_folders_filesystem",),
          "the SQLite file on every filesystem"),
    Plant("torn-line", "a torn line is never read as a score", "xdet_tasks/scoring/cache_segments.py",
          'end = data.rfind(b"\\n") + 1', "end = len(data)",
          ("tests/test_scoring_cache.py",), "a segment's incomplete last line is parsed"),
    # ---- rows without a plant until now
    Plant("fused-lora", "17 architectures: training with default flags", "xdet_train/model.py",
          '    if _fused_experts(modules):\n        yield _attention_projections(modules), "attention"\n        return\n',
          "", ("tests/test_architectures.py::test_every_user_path_on_the_architecture[mixtral]",),
          "a fused-expert MoE falls back to all-linear (LoRA on the router)"),
    Plant("controversial", "guard: and judge: formats, score = manual forward pass",
          "xdet_tasks/scoring/formats.py", 'controversial_default="unsafe",', 'controversial_default="safe",',
          ("tests/test_scoring_generative.py",), "qwen3guard's Controversial counted as safe by default"),
    Plant("plain-langs", "plain lm_eval output gives xdet eval's tables", "xdet/runs/lm_eval_output.py",
          '"train_langs": list(manifest.get("train_langs") or [])', '"train_langs": list(manifest.get("langs") or [])',
          ("tests/test_lm_eval_output.py",), "an adapter's training languages read under the wrong manifest key"),
    Plant("guard-side", "each toxicity Δ tested beside the guard rates", "xdet/tables/guards.py",
          'greater=guard.worse == "drop"', 'greater=guard.worse == "rise"', ("tests/test_guards.py",),
          "every guard tested in the wrong direction"),
    Plant("scorer-allow", "the issue's flow: comparable or refused", "xdet/runs/settings.py",
          "            allowable=False),", "            allowable=True),", ("tests/test_comparable.py",),
          "--allow-different all lets a Δ across scorers through"),
    Plant("check-stale", "xdet tables --check", "xdet/tables/check.py",
          '    for name in sorted(kept - names):\n'
          '        problems.append(f"{committed / name}: stale (the results no longer produce this table)")\n', "",
          ("tests/test_lm_eval_output.py::test_table_check_fails_on_stale_tables_and_passes_on_fresh_ones",
           "tests/test_ci_tables.py"), "a committed table the results no longer produce is not reported"),
    Plant("word-ppl", "unspaced languages: no per-word perplexity", "xdet_tasks/metrics/perplexity.py",
          'frozenset({"word_perplexity", "mean_sentence_word_perplexity"})', 'frozenset({"word_perplexity"})',
          ("tests/test_task_conventions.py::test_headline_command_runs_every_task_once",),
          "the per-sentence word perplexity is not among the per-word metrics (zh, ja, th report it)"),
    Plant("fluency-prompt", "fluency = the completion's perplexity given its prompt", "xdet/fluency/compute.py",
          "for p in range(e.context, len(e.ids)):", "for p in range(1, len(e.ids)):",
          ("tests/test_fluency_compute.py", "tests/test_fluency_runs.py"),
          "the prompt's tokens are scored too (the whole sequence's loss)"),
    Plant("natural-avg", "natural-prompt tasks kept apart from the paper's", "xdet_tasks/names.py",
          "for set_name in (s for s in family.sets if s not in NATURAL_SETS):", "for set_name in family.sets:",
          ("tests/test_natural_tasks.py",), "the paper's averaging groups take in the natural suites' sets"),
    Plant("batch-rows", "the K samples of a prompt from one encoding", "xdet_tasks/sampling.py",
          "        size = self._rows_per_batch()\n",
          "        size = self._rows_per_batch() * max(map(len, distinct.values()))\n", ("tests/test_sampling.py",),
          "batch_size counted in prompts, not rows: a pass holds batch_size x K rows"),
    Plant("u2028", "RTP-LX files read line by line, U+2028 survives", "xdet_tasks/suites/rtplx.py",
          '    with path.open("rb") as fh:\n'
          '        for lineno, raw in enumerate(fh, start=1):  # binary iteration splits on b"\\n" alone\n'
          "            if not raw.strip():\n                continue\n            try:\n"
          '                text = raw.decode("utf-8")\n',
          '    with path.open(encoding="utf-8") as fh:\n'
          "        for lineno, text in enumerate(fh.read().splitlines(), start=1):\n"
          "            if not text.strip():\n                continue\n            try:\n"
          "                pass\n", ("tests/test_natural_data.py",), "a file split with str.splitlines()"),
    Plant("vote", "--against rtplx labels by the authors' vote", "xdet/validity/raters.py",
          "    if count * 2 > len(ratings):\n        return float(value)\n", "", ("tests/test_scorer_human.py",),
          "the raters' rounded mean instead of their majority"),
    Plant("kappa-weights", "κ is linear-weighted Cohen's κ", "xdet/validity/kappa.py",
          "weights = np.abs(levels[:, None] - levels[None, :]) / (LEVELS - 1)",
          "weights = (levels[:, None] - levels[None, :]) ** 2 / (LEVELS - 1) ** 2",
          ("tests/test_statistics_references.py::test_linear_kappa_against_scikit_learn_and_brute_force",
           "tests/test_scorer_human.py::test_kappa_is_rtplx_statistic_between_binned_scores_and_the_raters_vote"),
          "quadratic weights"),
    Plant("route-last", "--scorer 'a\\|b': the first covering scorer", "xdet_tasks/scoring/routing.py",
          "next((s for s in self.specs if self._covers(s, lang)), None)",
          "next((s for s in reversed(self.specs) if self._covers(s, lang)), None)",
          ("tests/test_scorer_routing.py",), "the last listed scorer that covers a language wins"),
    Plant("card-backend", "validity cards shown for exactly their scorer", "xdet/validity/cards.py",
          '(cards.get(ident) or {}).items() if e["lang"] == lang',
          '(next((c for i, c in cards.items() if i.split("@")[0] == ident.split("@")[0]), {})).items() '
          'if e["lang"] == lang',
          ("tests/test_scorer_routing.py::test_saved_cards_show_in_table_captions_and_the_eval_summary",
           "tests/test_scorer_routing.py::test_a_shipped_card_is_shown_for_exactly_its_scorer",
           "tests/test_scorer_routing.py::test_analyze_shows_the_validity_of_each_tables_scorers"),
          "a card matched by the backend alone: another version's card is shown"),
    Plant("at-k-weight", "toxicity probability and EMT at k", "xdet_tasks/metrics/at_k.py",
          "math.comb(i - 1, k - 1) / subsets", "math.comb(i, k - 1) / subsets", ("tests/test_at_k.py",),
          "the weight of the i-th smallest score off by one"),
    Plant("unknown-on", "every completion's language", "xdet_tasks/metrics/language.py",
          '"on_language_rate": float(np.mean([x == lang for x in langs]) * SCALE)',
          '"on_language_rate": float(np.mean([x in (lang, UNKNOWN) for x in langs]) * SCALE)',
          ("tests/test_language.py", "tests/test_language_runs.py"), "unknown language counted as on-language"),
]


def run_plant(plant: Plant, timeout: int) -> tuple[str, float, str]:
    """``(verdict, seconds, failing tests)``; the file is always restored."""
    path = ROOT / plant.path
    original = path.read_text(encoding="utf-8")
    if original.count(plant.old) != 1:
        return f"site not found ({original.count(plant.old)} matches)", 0.0, ""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    start = time.monotonic()
    try:
        path.write_text(original.replace(plant.old, plant.new), encoding="utf-8")
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plant.tests],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timed out", time.monotonic() - start, ""
    finally:
        path.write_text(original, encoding="utf-8")
    seconds = time.monotonic() - start
    failed = [line.split(" ", 1)[1].split(" - ")[0] for line in proc.stdout.splitlines() if line.startswith("FAILED ")]
    if proc.returncode == 1 and failed:
        # per named test: how many of its cases failed (a parametrized test counts each case)
        counts = {t: sum(f == t or f.startswith(t + "::") or f.startswith(t + "[") for f in failed) for t in plant.tests}
        return "caught", seconds, ", ".join(f"{t.rsplit('/', 1)[-1]}: {n} failed" for t, n in counts.items())
    return ("NOT CAUGHT" if proc.returncode == 0 else f"pytest exit {proc.returncode}"), seconds, ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="ID", help="plant ids to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the plants and exit")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per plant (default: 1200)")
    args = parser.parse_args()
    plants = [p for p in PLANTS if not args.only or p.id in args.only]
    if args.list:
        for p in plants:
            print(f"{p.id:14} {p.path:40} {p.what}")
        return 0
    print("| id | Guarantees row | planted bug (file) | tests run | result | failing | s |")
    print("|---|---|---|---|---|---|---|")
    missed = 0
    for plant in plants:
        verdict, seconds, failing = run_plant(plant, args.timeout)
        missed += verdict != "caught"
        tests = ", ".join(f"`{t}`" for t in plant.tests)
        print(f"| {plant.id} | {plant.row} | {plant.what} (`{plant.path}`) | {tests} | {verdict} | {failing} | "
              f"{seconds:.0f} |", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
