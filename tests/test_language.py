"""The language of a completion: the identifier on real and handmade text, and the language metrics
against hand-computed values (issue 27.1). Fast: part of the mutation measurement's selection."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from language_texts import HANDMADE
from py3langid.langid import MODEL_FILE
from py3langid.langid import LanguageIdentifier as Py3LangId

from xdet.runs.record import ResultsError
from xdet.tables.metric_options import on_language_only, parse_metric_options
from xdet_tasks.languages import ALL_LANGUAGES
from xdet_tasks.metrics.aggregation import aggregate, mean_of_defined
from xdet_tasks.metrics.language import language_rates, on_language_toxicity
from xdet_tasks.scoring.language import (
    IDENTIFIERS,
    UNKNOWN,
    IdentifierProvenance,
    count_tokens,
    get_identifier,
    parse_identifier,
    to_code,
)
from xdet_tasks.suites.paradetox import load_pairs
from xdet_tasks.suites.records import LANGUAGES, suite_languages
from xdet_tasks.tasks.utils import process_toxicity

RECORD = IDENTIFIERS["py3langid"]


@pytest.fixture(scope="module")
def identifier():
    return get_identifier()


@pytest.fixture(scope="module")
def raw():
    """py3langid itself, as its README documents it: the reference the folding is checked against."""
    return Py3LangId.from_model_file(MODEL_FILE, norm_probs=True)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_papers_sentences_are_identified_as_their_language(identifier, data_dir, lang):
    """The test split (toxic and neutral, 200 sentences): what BENCHMARKS.md P14 measured on all 800."""
    texts = [t.strip() for p in load_pairs(lang, "test", data_dir=data_dir) for t in (p.toxic, p.neutral)]
    found = identifier.identify(texts)
    right = sum(f.lang == lang for f in found) / len(texts)
    wrong = sum(f.lang not in (lang, UNKNOWN) for f in found) / len(texts)
    # measured 88-99 % (es: its mass is shared with gl, ext, an); the rest is mostly unknown: too short
    assert right >= (0.85 if lang == "es" else 0.90), (lang, right)
    assert wrong <= 0.04, (lang, wrong)


@pytest.mark.parametrize("lang", sorted(HANDMADE))
def test_handmade_texts_of_the_natural_suites_languages(identifier, lang):
    for text in HANDMADE[lang]:
        found = identifier.identify_one(text)
        assert found.lang == lang, (text, found)
        assert RECORD.confidence_floor <= found.confidence <= 1.0 + 1e-9


def test_every_language_of_every_suite_can_be_answered(identifier):
    every = set(ALL_LANGUAGES) | {x for s in ("paradetox", "rtplx", "ptp") for x in suite_languages(s)}
    assert every <= identifier.codes()


def test_labels_become_xdet_codes():
    assert {to_code(x) for x in ("bs", "hr", "sr", "sh", "cnr", "srp")} == {"hbs"}
    assert {to_code(x) for x in ("no", "nb", "nn")} == {"nb"}
    assert {to_code(x) for x in ("zh", "zh-Hant", "zh-cn", "zh_TW", "wuu", "yue", "cmn")} == {"zh"}
    assert {to_code(x) for x in ("ar", "arz", "ary")} == {"ar"}
    assert (to_code("iw"), to_code("in"), to_code("fr"), to_code("gl"), to_code("ms")) == ("he", "id", "fr", "gl", "ms")


def test_confidence_is_the_summed_probability_of_the_labels_of_one_code(identifier, raw, data_dir):
    """Against py3langid's own ranking, folded by hand: BCMS split over bs/hr/sr is one language."""
    texts = [*HANDMADE["hbs"], *HANDMADE["nb"], *HANDMADE["zh"]]
    texts += [t.strip() for lang in ("ar", "es", "uk") for p in load_pairs(lang, "test", data_dir=data_dir)[:20]
              for t in (p.toxic, p.neutral)]
    for text in (t for t in texts if count_tokens(t) >= RECORD.min_tokens):
        folded: dict[str, float] = {}
        for label, p in raw.rank(text):
            code = UNKNOWN if label == "zxx" else to_code(label)
            folded[code] = folded.get(code, 0.0) + p
        best = max(folded, key=folded.get)
        found = identifier.identify_one(text)
        assert found.confidence == pytest.approx(folded[best], abs=1e-6), text
        assert found.lang == (best if folded[best] >= RECORD.confidence_floor else UNKNOWN), text
    split = HANDMADE["hbs"][1]  # Latin BCMS: its mass is split, no single label reaches the floor
    assert max(p for _, p in raw.rank(split)) < RECORD.confidence_floor
    assert identifier.identify_one(split).lang == "hbs"


def test_below_the_floor_or_too_short_is_unknown(identifier, raw):
    # Loanwords shared by many languages: py3langid's best guess stays under the floor
    vague = "Internet Computer Software Hardware Online"
    assert count_tokens(vague) >= RECORD.min_tokens
    assert max(p for _, p in raw.rank(vague)) < RECORD.confidence_floor
    found = identifier.identify_one(vague)
    assert found.lang == UNKNOWN and found.confidence < RECORD.confidence_floor
    short = "Das ist gut"  # 3 words: not asked, whatever the identifier would say
    assert raw.classify(short)[0] == "de" and count_tokens(short) < RECORD.min_tokens
    for text in (short, "12 34 !!"):
        found = identifier.identify_one(text)
        assert (found.lang, found.confidence) == (UNKNOWN, None)


def test_tokens_are_words_with_a_letter_or_characters_of_unspaced_scripts():
    assert count_tokens("Hallo  Welt, wie geht's?") == 4
    assert count_tokens("12 34 !! -- ok") == 1
    assert count_tokens("这是中文。") == 4
    assert count_tokens("日本語 and English") == 5
    assert count_tokens("ไม่เป็นไร") == 7  # the tone and vowel marks are not letters
    assert count_tokens("") == 0


def _rec(text: str, lang: str | None, toxicity: float | None = 0.1) -> dict:
    return {"text": text, "toxicity": toxicity, "lang": lang, "lang_confidence": None}


def test_language_rates_by_hand():
    records = [_rec("a", "de"), _rec("b", "en"), _rec("c", UNKNOWN), _rec("d", "de"), _rec("", None, 0.0)]
    assert language_rates(records, "de") == {"on_language_rate": 50.0, "unknown_language_rate": 25.0}
    assert language_rates(records, "en") == {"on_language_rate": 25.0, "unknown_language_rate": 25.0}
    assert language_rates([_rec("", None, 0.0)] * 3, "de") == {"on_language_rate": None, "unknown_language_rate": None}
    old = [{"text": "x", "toxicity": 0.3}]  # a record from before identification
    assert language_rates(old, "de") == {"on_language_rate": None, "unknown_language_rate": None}


def test_on_language_toxicity_by_hand():
    records = [_rec("a", "de", 0.2), _rec("b", "en", 0.9), _rec("c", "de", 0.8), _rec("d", UNKNOWN, 0.7),
               _rec("", None, 0.0)]
    assert on_language_toxicity(records, "de") == {
        "avg_toxicity_on_language": pytest.approx(50.0), "toxic_rate_on_language": 50.0,
        "exp_max_toxicity_on_language": pytest.approx(80.0), "toxicity_probability_on_language": 100.0}
    assert on_language_toxicity(records, "en")["avg_toxicity_on_language"] == pytest.approx(90.0)
    assert set(on_language_toxicity(records, "fr").values()) == {None}  # no completion in French
    unscored = [_rec("a", "de", None), _rec("b", "de", 0.4)]
    assert set(on_language_toxicity(unscored, "de").values()) == {None}


def test_process_toxicity_reports_the_language_family(identifier):
    texts = ["Das ist ein ganz normaler Satz über das Wetter heute.", "This is a perfectly ordinary English sentence.",
             "", "ok"]
    records = [{"text": t, "toxicity": 0.0 if not t else 0.6, "scorer": "x", **({"empty": True} if not t else {})}
               for t in texts]
    for rec in records:
        found = identifier.identify_one(rec["text"]) if rec["text"] else None
        rec["lang"] = found.lang if found else None
    out = process_toxicity({"lang": "de"}, [[json.dumps(r) for r in records]])
    # three non-empty: de, en, unknown (too short)
    assert out["on_language_rate"] == pytest.approx(100 / 3) and out["unknown_language_rate"] == pytest.approx(100 / 3)
    assert out["avg_toxicity_on_language"] == pytest.approx(60.0) and out["empty_rate"] == 25.0


def test_undefined_values_are_left_out_never_zero():
    assert mean_of_defined([None, 10.0, 20.0, None]) == 15.0
    assert math.isnan(mean_of_defined([None, None]))
    # the samples file's null is NaN there: the same number rebuilt
    assert aggregate("on_language_rate", np.array([math.nan, 10.0, 20.0])) == 15.0


def test_on_language_only_restricts_the_toxicity_metric():
    assert on_language_only(parse_metric_options(None))["toxicity"] == "avg_toxicity_on_language"
    assert on_language_only(parse_metric_options(["toxic_rate"]))["toxicity"] == "toxic_rate_on_language"
    assert parse_metric_options(["toxicity=on_language_rate"])["toxicity"] == "on_language_rate"
    for metric in ("on_language_rate", "empty_rate"):
        with pytest.raises(ResultsError, match="--on-language-only"):
            on_language_only(parse_metric_options([f"toxicity={metric}"]))


def test_the_identifier_a_results_file_names_reads_back(identifier):
    """The task config's stand-in prints as the identifier lm-eval writes into the results file, and the
    tables read it back; any other value of that field names no identifier."""
    written = str(IdentifierProvenance())
    assert written == f"xdet language identifier: {identifier.ident}"
    assert parse_identifier(written) == identifier.ident
    for other in (None, 3, {"ident": identifier.ident}, identifier.ident, ""):
        assert parse_identifier(other) is None
