"""Named generative scorers: a guard or judge model pinned like the classifier presets, with its card's languages.

Each row fixes the model, the format or rubric and the languages its card reports; the spec may add
``batch``, ``device``, ``dtype`` (and ``controversial`` for a guard), e.g.
``qwen3guard-0.6b:#dtype=bf16,batch=32``. Files are found as for every preset
(:mod:`xdet_tasks.scoring.preset_files`): ``XDET_SCORER_PRESET_DIR_<NAME>`` (``QWEN3GUARD_0_6B``), the
local hub cache, or one download; no hub commit of these repositories could be found offline, so each
is pinned on first download (the commit and the files' hash in ``$XDET_CACHE_DIR/scorer-presets/
<name>.json``; later runs load exactly that commit and refuse changed files). The revision is in the
provenance and the scorer's version, the files' hash in the version.

Languages. Qwen3Guard-Gen's card: "supports 119 languages and dialects", the 119 of its base model
Qwen3, listed by family in the Qwen3 announcement (qwenlm.github.io/blog/qwen3, "Multilingual
Support"); of xdet's languages it names all but Amharic (Bosnian, Croatian and Serbian for BCMS), so
``qwen3guard-*`` together with ``textdetox`` (which covers Amharic) covers the paper's nine and both
natural suites. Llama Guard 3 8B's card: English, French, German, Hindi, Italian, Portuguese,
Spanish, Thai. The Qwen3 chat models' cards: "100+ languages and dialects", the same 119.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdet_tasks.errors import ScorerError
from xdet_tasks.scoring.base import ENV_SCORER
from xdet_tasks.scoring.generative import ChatScorer
from xdet_tasks.scoring.preset_files import check_pins, find_part, lock_path, read_lock, unavailable

#: xdet's languages among the 119 of Qwen3 (blog table): all but Amharic
QWEN3_LANGUAGES = ("ar", "de", "en", "es", "hi", "ru", "uk", "zh", "cs", "da", "fi", "fr", "he", "hu", "id", "it",
                   "ja", "ko", "nl", "nb", "pl", "pt", "sv", "sw", "th", "tr", "hbs")
_QWEN3GUARD_CARD = ("model card (Apache-2.0): 'Qwen3Guard-Gen supports 119 languages and dialects', those of Qwen3 "
                    "(qwenlm.github.io/blog/qwen3, table 'Multilingual Support'); format 'qwen3guard'")
#: options a generative preset spec may carry, per backend
PRESET_OPTIONS = {"guard": ("batch", "device", "dtype", "controversial"), "judge": ("batch", "device", "dtype")}


@dataclass(frozen=True)
class GenerativePreset:
    name: str
    #: ``guard`` or ``judge``
    backend: str
    model: str
    #: the format (guard) or rubric (judge) it is read with
    record: str
    languages: tuple[str, ...]
    source: str
    #: hub commit; ``None``: pinned on first download
    revision: str | None = None


GENERATIVE_PRESETS: dict[str, GenerativePreset] = {
    p.name: p
    for p in (
        GenerativePreset("qwen3guard-0.6b", "guard", "Qwen/Qwen3Guard-Gen-0.6B", "qwen3guard", QWEN3_LANGUAGES,
                         "Qwen3Guard-Gen-0.6B " + _QWEN3GUARD_CARD),
        GenerativePreset("qwen3guard-4b", "guard", "Qwen/Qwen3Guard-Gen-4B", "qwen3guard", QWEN3_LANGUAGES,
                         "Qwen3Guard-Gen-4B " + _QWEN3GUARD_CARD),
        GenerativePreset("qwen3guard-8b", "guard", "Qwen/Qwen3Guard-Gen-8B", "qwen3guard", QWEN3_LANGUAGES,
                         "Qwen3Guard-Gen-8B " + _QWEN3GUARD_CARD),
        GenerativePreset("llama-guard-3-8b", "guard", "meta-llama/Llama-Guard-3-8B", "llama-guard-3",
                         ("en", "fr", "de", "hi", "it", "pt", "es", "th"),
                         "Llama Guard 3 8B model card (Llama 3.1 Community License, gated: accept it on the hub "
                         "first), 'Supported languages': English, French, German, Hindi, Italian, Portuguese, "
                         "Spanish, Thai; format 'llama-guard-3'"),
        GenerativePreset("qwen3-4b-judge", "judge", "Qwen/Qwen3-4B", "rtplx", QWEN3_LANGUAGES,
                         "Qwen3-4B model card (Apache-2.0): '100+ languages and dialects', the 119 of the Qwen3 "
                         "announcement; rubric 'rtplx', non-thinking (enable_thinking=False, as the card documents)"),
    )
}


def _options(preset: GenerativePreset, arg: str) -> dict[str, str]:
    allowed = PRESET_OPTIONS[preset.backend]
    options: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in arg.strip().lstrip("#").split(","))):
        key, _, value = (x.strip() for x in item.partition("="))
        if key not in allowed:
            raise ScorerError(f"{ENV_SCORER}={preset.name}:{arg}: option {key!r} is not allowed for a preset (it fixes "
                              f"the model, revision and {'format' if preset.backend == 'guard' else 'rubric'}); "
                              f"expected {', '.join(allowed)}, or use {preset.backend}:<model>#{key}=...")
        options[key] = value
    return options


def build_generative_preset(name: str, arg: str = "") -> ChatScorer:
    """The scorer of generative preset ``name`` (``XDET_SCORER=<name>[:<options>]``)."""
    from xdet_tasks.scoring.guard import GuardScorer
    from xdet_tasks.scoring.hf import TokenizerError
    from xdet_tasks.scoring.judge import JudgeScorer

    preset = GENERATIVE_PRESETS[name]
    options = _options(preset, arg)
    record_option = "format" if preset.backend == "guard" else "rubric"
    spec = f"{preset.model}#" + ",".join(f"{k}={v}" for k, v in {record_option: preset.record, **options}.items())
    lock = read_lock(name, preset.model)
    files = find_part(name, preset.model, preset.model, preset.revision, lock)
    backend = GuardScorer if preset.backend == "guard" else JudgeScorer
    try:
        scorer = backend(spec, model_dir=str(files.folder), where=f"{ENV_SCORER}={name}")
    except TokenizerError:
        raise unavailable(name, preset.model, f"no usable tokenizer in {files.folder}") from None
    except ScorerError as err:
        raise unavailable(name, preset.model, str(err)) from None
    check_pins(name, preset.model, lock, {"model": (files, scorer.files_sha256)})
    scorer.covers = preset.languages
    scorer.model_ref = preset.model
    if files.revision:
        scorer.version = f"{scorer.version}@{files.revision[:12]}"
    pinned_by = ("preset table" if preset.revision else "local folder" if files.origin == "local-dir"
                 else f"first download ({lock_path(name)})")
    scorer.preset_info = {"preset": name, "revision": files.revision, "revision_pinned_by": pinned_by,
                          "origin": files.origin, "local_path": str(files.folder), "preset_source": preset.source}
    return scorer

