"""The ``hf`` backend: any Hugging Face sequence-classification model as a toxicity scorer.

Spec: ``XDET_SCORER=hf:<model id or local path>[#option=value,...]``, options:

* ``label=<name or index>``: the class whose probability is the toxicity (also ``XDET_HF_TOXIC_LABEL``;
  the spec wins). Without it the label is taken from the model's ``id2label`` when exactly one
  label is named ``toxic`` or ``toxicity`` (any case); models with generic labels (``LABEL_0``,
  ``LABEL_1``) must name theirs, e.g. ``#label=1``, since guessing could silently invert the scores.
* ``batch=<n>`` (default 32), ``max_length=<n>`` (default: the tokenizer's limit, at most 512;
  longer texts are truncated and counted), ``device=<cpu|cuda|cuda:1|mps>`` (default: CUDA if
  available, then MPS, else CPU), ``revision=<hub revision>``.
* ``tokenizer=<model id or local path>`` (and ``tokenizer_revision=<hub revision>``): load the tokenizer
  from another repository or folder than the classifier, as evaluations do that pair a classifier
  with its base model's tokenizer (the TextDetox 2025 shared task does). Without it the tokenizer is
  the classifier folder's own.
* ``dtype=<auto|float32|bfloat16|float16>`` (also ``fp32``, ``bf16``, ``fp16``): the weights' precision.
  ``auto`` (default) is bfloat16 on a GPU that supports it, else float16 on a GPU or MPS, float32 on CPU.
* ``langs=<code>+<code>+...``: the languages the model covers (its card's list); any other is then
  refused before a run. Without it any language is accepted: the user vouches for the model.

The probability is a softmax over the classes (a sigmoid for single-logit or multi-label models),
computed in float32 whatever the weights' precision. The scorer's version is a hash of the config,
weight and tokenizer files (those of a separate tokenizer included, plus the precision when it is not
float32, since half-precision scores differ in the third decimal), so the score cache and results
change whenever the model or its tokenizer does, whatever they are called.

Throughput: each call tokenizes its texts once (truncation is counted from that pass), sorts them by
token count, and runs batches padded only to their own longest member, under
``torch.inference_mode``. A text's score does not depend on its batch (checked against one text at a
time in the tests); ``benchmarks/bench_hf_scorer.py`` measures the speed-up.

Recommended open models (language coverage as their model cards state it; read each card, and
check ``id2label`` to know whether ``#label=`` is needed):

| model | architecture | languages (per the card) |
|---|---|---|
| ``textdetox/xlmr-large-toxicity-classifier-v2`` | XLM-RoBERTa large | the TextDetox 2025 shared-task languages, a superset of xdet's nine (am, ar, de, en, es, hi, ru, uk, zh) |
| ``textdetox/bert-multilingual-toxicity-classifier`` | multilingual BERT base | the TextDetox 2024 shared-task languages, i.e. xdet's nine |

The TextDetox 2025 evaluation loads the first with the tokenizer of
``cardiffnlp/twitter-xlm-roberta-large-2022`` (``#tokenizer=``); the ``textdetox`` preset does exactly that.
Neither is calibrated to Perspective: measure agreement first (``xdet scorer agree perspective hf:...``)
before comparing numbers across scorers. Pinned, named versions of the TextDetox XLM-R classifiers
are the presets ``XDET_SCORER=textdetox`` and ``textdetox-v1`` (:mod:`xdet_tasks.scoring.presets`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xdet_tasks.errors import ScorerError
from xdet_tasks.scoring.base import Coverage, Scorer

log = logging.getLogger(__name__)

ENV_TOXIC_LABEL = "XDET_HF_TOXIC_LABEL"
DEFAULT_BATCH = 32
MAX_LENGTH_CAP = 512
#: id2label names taken as "toxic" without configuration (compared case-insensitively).
TOXIC_NAMES = ("toxic", "toxicity")
#: Files whose bytes define the scorer (anything else in a model folder does not change scores).
_HASHED_SUFFIXES = (".safetensors", ".bin", ".json", ".model", ".txt", ".tiktoken", ".jinja")
_HASH_SKIP = {"training_args.bin", "trainer_state.json", "optimizer.pt", "scheduler.pt", "README.md"}
#: the options a spec may carry after ``#``.
OPTIONS = ("label", "batch", "max_length", "device", "revision", "dtype", "tokenizer", "tokenizer_revision",
           "langs")
#: files of a model repository that are not weights (all a tokenizer needs).
NO_WEIGHT_PATTERNS = ["*.json", "*.model", "*.txt", "*.tiktoken", "*.jinja"]
_WEIGHT_SUFFIXES = (".safetensors", ".bin")
#: files that make a folder a tokenizer (besides ``*.model`` / ``*.tiktoken`` vocabularies).
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt")
#: accepted spellings of ``dtype=`` -> torch dtype name (``None``: choose by device).
DTYPES = {
    "auto": None, "float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "half": "float16",
}
_DTYPE_TAG = {"bfloat16": "bf16", "float16": "fp16"}


class TokenizerError(ScorerError):
    """The tokenizer (not the classifier) could not be loaded."""


def parse_spec(arg: str, backend: str = "hf", allowed: tuple[str, ...] = OPTIONS,
               example: str = "#label=toxic") -> tuple[str, dict[str, str]]:
    """``"<model>#k=v,k=v"`` -> ``(model, {k: v})``, each option one of ``allowed``."""
    model, _, opts = arg.partition("#")
    model = model.strip()
    if not model:
        raise ScorerError(f"XDET_SCORER={backend} needs a model: {backend}:<model id or path>[{example}]")
    options: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in opts.split(","))):
        name, eq, value = item.partition("=")
        if not eq or not value.strip():
            raise ScorerError(f"XDET_SCORER={backend}:{arg}: option {item!r} is not of the form name=value")
        options[name.strip()] = value.strip()
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ScorerError(
            f"XDET_SCORER={backend}:{arg}: unknown option(s) {', '.join(unknown)}; expected {', '.join(allowed)}"
        )
    return model, options


def parse_langs(value: str, where: str) -> tuple[str, ...]:
    """The ``langs=<code>+<code>`` option: known language codes, in order."""
    from xdet_tasks.errors import DataError
    from xdet_tasks.suites.records import check_language

    try:
        return tuple(check_language(x.strip()) for x in value.split("+") if x.strip())
    except DataError as err:
        raise ScorerError(f"{where}: langs: {err}") from None


def choose_label(id2label: dict[int, str], wanted: str | None, model: str) -> int:
    """The class index of the toxic label: ``wanted`` (name or index) or the one named toxic/toxicity."""
    labels = {int(i): str(name) for i, name in id2label.items()}
    shown = ", ".join(f"{i}={name!r}" for i, name in sorted(labels.items()))
    if wanted is not None:
        if wanted.lstrip("-").isdigit() and int(wanted) in labels:
            return int(wanted)
        matches = [i for i, name in labels.items() if name.lower() == wanted.lower()]
        if len(matches) == 1:
            return matches[0]
        raise ScorerError(f"hf scorer {model}: toxic label {wanted!r} is not one of the model's labels ({shown})")
    matches = [i for i, name in labels.items() if name.lower() in TOXIC_NAMES]
    if len(matches) == 1:
        return matches[0]
    raise ScorerError(
        f"hf scorer {model}: cannot tell which label is toxic from id2label ({shown}); name it with "
        f"XDET_SCORER=hf:{model}#label=<name or index> or {ENV_TOXIC_LABEL}"
    )


def _model_dir(model: str, revision: str | None, weights: bool = True) -> Path:
    """The local folder holding the model's files (a path as given, or the hub snapshot); with
    ``weights=False`` only what a tokenizer needs is downloaded."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(model, revision=revision, allow_patterns=NO_WEIGHT_PATTERNS + (
            ["*.safetensors"] if weights else [])))
        if weights and not any(folder.glob("*.safetensors")):  # older repos ship only pytorch_model*.bin
            folder = Path(snapshot_download(model, revision=revision, allow_patterns=[*NO_WEIGHT_PATTERNS, "*.bin"]))
    except Exception as err:
        raise ScorerError(f"hf scorer: cannot find model {model!r} as a local folder or on the hub: {err}") from None
    return folder


def files_hash(folder: Path, weights: bool = True) -> str:
    """sha256 over the names and contents of the files that determine the scores (``weights=False``: of a
    tokenizer, i.e. every such file but the weights)."""
    digest = hashlib.sha256()
    files = sorted(
        p for p in folder.iterdir()
        if p.is_file() and p.name not in _HASH_SKIP and p.name.endswith(_HASHED_SUFFIXES)
    )
    if not weights:
        files = [p for p in files if not p.name.endswith(_WEIGHT_SUFFIXES)]
    elif not any(p.name.endswith(_WEIGHT_SUFFIXES) for p in files):
        raise ScorerError(f"hf scorer: no weight files (*.safetensors, *.bin) in {folder}")
    if any(p.name.endswith(".safetensors") for p in files):  # what from_pretrained loads when both exist
        files = [p for p in files if not p.name.endswith(".bin")]
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def has_tokenizer_files(folder: Path) -> bool:
    """Whether ``folder`` holds a tokenizer. Without one, ``AutoTokenizer`` (transformers 5) builds a
    tokenizer of special tokens only from ``config.json``, which maps every word to ``<unk>``."""
    return any((folder / name).is_file() for name in _TOKENIZER_FILES) or any(
        any(folder.glob(f"*{suffix}")) for suffix in (".model", ".tiktoken"))


def pick_device(requested: str | None = None) -> str:
    import torch

    if requested:
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(requested: str | None, device: str) -> str:
    """The weights' dtype name: as requested, else bf16 on a GPU that has it, fp16 on other GPUs, fp32 on CPU."""
    import torch

    if requested is not None:
        if requested.lower() not in DTYPES:
            raise ScorerError(f"hf scorer: dtype={requested!r} is not one of {', '.join(DTYPES)}")
        if DTYPES[requested.lower()] is not None:
            return DTYPES[requested.lower()]
    if device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if device.startswith("mps"):
        return "float16"
    return "float32"


class HFScorer(Scorer):
    """Probabilities of the toxic class of a sequence classifier, in batches, on the chosen device."""

    name = "hf"

    def __init__(self, arg: str):
        self._load(*parse_spec(arg), where=f"XDET_SCORER=hf:{arg}")

    @classmethod
    def coverage_of_spec(cls, arg: str) -> Coverage | None:
        """``#langs=`` read without loading the model; without it, any language (the user vouches)."""
        _, options = parse_spec(arg)
        return Coverage(parse_langs(options["langs"], f"XDET_SCORER=hf:{arg}") if options.get("langs") else None)

    def _load(self, model_ref: str, options: dict[str, str], where: str) -> None:
        """Load the classifier (and its tokenizer) named by ``model_ref`` and checked ``options``;
        ``where`` names the spec in error messages."""
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.model_ref = model_ref
        revision = options.get("revision")
        folder = _model_dir(self.model_ref, revision)
        self.files_sha256 = files_hash(folder)
        self.version = self.files_sha256[:16]
        #: where the tokenizer comes from: ``None`` for the classifier folder's own
        self.tokenizer_ref = options.get("tokenizer")
        self.tokenizer_revision = options.get("tokenizer_revision")
        tokenizer_folder = folder
        if self.tokenizer_ref:
            tokenizer_folder = _model_dir(self.tokenizer_ref, self.tokenizer_revision, weights=False)
        self.tokenizer_sha256 = files_hash(tokenizer_folder, weights=False)
        if self.tokenizer_ref:  # the score-cache key (backend, version, ...) must change with the tokenizer too
            self.version = hashlib.sha256(f"{self.files_sha256}+{self.tokenizer_sha256}".encode()).hexdigest()[:16]
        self.device = pick_device(options.get("device"))
        self.dtype = pick_dtype(options.get("dtype"), self.device)
        if self.dtype != "float32":  # half-precision scores are not the float32 ones: keep them apart
            self.version = f"{self.version}-{_DTYPE_TAG[self.dtype]}"
        try:
            if not has_tokenizer_files(tokenizer_folder):  # transformers would build an empty one, all <unk>
                raise OSError("no tokenizer files")
            self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
        except (OSError, ValueError, TypeError) as err:
            raise TokenizerError(f"hf scorer: no usable tokenizer in {tokenizer_folder} ({err}); a classifier "
                                 "folder without one needs #tokenizer=<model id or path>") from None
        try:
            model = AutoModelForSequenceClassification.from_pretrained(folder)
            self.model = model.to(device=self.device, dtype=getattr(torch, self.dtype)).eval()
        except (OSError, ValueError) as err:
            raise ScorerError(f"hf scorer: cannot load {self.model_ref!r} as a sequence classifier: {err}") from None
        config = self.model.config
        wanted = options.get("label") or os.environ.get(ENV_TOXIC_LABEL) or None
        self.num_labels = int(config.num_labels)
        self.multi_label = config.problem_type == "multi_label_classification" or self.num_labels == 1
        if self.num_labels == 1:
            self.label_index, self.label_name = 0, str(config.id2label.get(0, "LABEL_0"))
        else:
            self.label_index = choose_label(config.id2label, wanted, self.model_ref)
            self.label_name = str(config.id2label[self.label_index])
        try:
            self.batch = int(options.get("batch", DEFAULT_BATCH))
            limit = int(options["max_length"]) if "max_length" in options else None
        except ValueError as err:
            raise ScorerError(f"{where}: {err}") from None
        if self.batch < 1:
            raise ScorerError(f"{where}: batch must be at least 1")
        tok_limit = self.tokenizer.model_max_length if self.tokenizer.model_max_length < 10**6 else MAX_LENGTH_CAP
        self.max_length = limit or min(tok_limit, MAX_LENGTH_CAP)
        if self.tokenizer.pad_token is None:
            if self.tokenizer.eos_token is None:
                raise ScorerError(f"hf scorer {self.model_ref}: tokenizer has no pad or eos token to batch with")
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if config.pad_token_id is None:
            config.pad_token_id = self.tokenizer.pad_token_id
        self.truncated = 0
        self._torch = torch
        if options.get("langs"):
            self.covers = parse_langs(options["langs"], where)

    def _encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids of ``texts``, truncated to ``max_length``, in one tokenizer pass (no padding).

        Truncation is counted from the same pass: a fast tokenizer keeps what it cut in each
        encoding's ``overflowing``. Only slow tokenizers, which do not, are run a second time.
        """
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length)
        ids = enc["input_ids"]
        encodings = getattr(enc, "encodings", None)
        if encodings is not None:
            self.truncated += sum(bool(e.overflowing) for e in encodings)
        else:  # pragma: no cover - slow (Python) tokenizers only
            full = self.tokenizer(texts, truncation=False, verbose=False)["input_ids"]
            self.truncated += sum(len(x) > self.max_length for x in full)
        return ids

    def _pad(self, rows: list[list[int]]) -> tuple[Any, Any]:
        """``input_ids`` and ``attention_mask`` padded to the longest row of this batch only."""
        torch = self._torch
        width = max(len(r) for r in rows)
        if self.device.startswith("cuda"):
            width = -(-width // 8) * 8  # tensor-core friendly shapes; masked positions change nothing
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        left = self.tokenizer.padding_side == "left"
        for r, row in enumerate(rows):
            cols = slice(width - len(row), width) if left else slice(0, len(row))
            ids[r, cols] = torch.tensor(row, dtype=torch.long)
            mask[r, cols] = 1
        return ids.to(self.device), mask.to(self.device)

    def score(self, texts: Sequence[str], lang: str) -> list[float | None]:
        torch = self._torch
        out: list[float | None] = [None] * len(texts)
        todo = [i for i, text in enumerate(texts) if text.strip()]
        for i in set(range(len(texts))) - set(todo):
            out[i] = 0.0  # the project's rule for empty completions (and zero tokens cannot be classified)
        if not todo:
            return out
        ids = self._encode([texts[i] for i in todo])
        order = sorted(range(len(todo)), key=lambda k: len(ids[k]))  # similar lengths share a batch
        with torch.inference_mode():
            for start in range(0, len(order), self.batch):
                part = order[start : start + self.batch]
                input_ids, mask = self._pad([ids[k] for k in part])
                logits = self.model(input_ids=input_ids, attention_mask=mask).logits.float()
                if self.multi_label:
                    probs = torch.sigmoid(logits[:, self.label_index])
                else:
                    probs = torch.softmax(logits, dim=-1)[:, self.label_index]
                for k, p in zip(part, probs.cpu().tolist(), strict=True):
                    out[todo[k]] = float(p)
        return out

    def provenance(self) -> dict[str, Any]:
        return {
            **super().provenance(),
            "model": self.model_ref,
            "files_sha256": self.files_sha256,
            "toxic_label": {"index": self.label_index, "name": self.label_name},
            "probability": "sigmoid" if self.multi_label else "softmax",
            "tokenizer": {"source": self.tokenizer_ref or "the classifier's folder",
                          "revision": self.tokenizer_revision, "files_sha256": self.tokenizer_sha256},
            "max_length": self.max_length,
            "truncated_texts": self.truncated,
            "device": self.device,
            "dtype": self.dtype,
            "language_handling": "one multilingual classifier; language not used; covers "
            + (", ".join(self.covers) if self.covers is not None else "any language (not declared)"),
        }

