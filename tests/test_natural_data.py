"""RTP-LX and PTP loaders on files in their published layouts (tests/natural_fixtures.py cites them)."""

from __future__ import annotations

import json

import pytest
from natural_fixtures import LINE_SEPARATOR, write_ptp_hub, write_rtplx_hub, write_rtplx_release

from xdet_tasks.errors import DataError
from xdet_tasks.suites import natural, ptp, rtplx
from xdet_tasks.suites.records import suite_languages


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """Hub-layout folders are read through ``datasets``: into a cache of the test's own."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")


def test_release_files_load_every_locale_by_file_name(tmp_path, data_dir, monkeypatch):
    folder = write_rtplx_release(tmp_path / "rtplx", data_dir=data_dir, n=4, old_locales=("DE", "ZH-Hans"))
    monkeypatch.setenv("XDET_RTPLX_DIR", str(folder))
    for lang in suite_languages("rtplx"):
        prompts = natural.load_prompts("rtplx", lang, annotations=True)
        assert len(prompts) == 4 and {p.lang for p in prompts} == {lang}
    zh = natural.load_prompts("rtplx", "zh")
    assert {p.locale for p in zh} == {"ZH-Hans"}  # the file inside says "ZH" for both scripts: the name decides
    # older keys (Annotations/AnnotationsRaw, string Index) and current ones (int Index) read alike
    de = rtplx.load_prompts("de", annotations=True)
    assert de[0].source_index == "0" and de[0].ratings == (4, 5, 4) and de[0].rating == pytest.approx(13 / 3)
    es = rtplx.load_prompts("es", annotations=True)
    assert es[0].source_index == "0" and es[0].ratings == (4, 5, 4) and es[0].rating == 4.0


def test_a_prompt_keeps_characters_that_splitlines_would_split(tmp_path, data_dir):
    folder = write_rtplx_release(tmp_path / "rtplx", data_dir=data_dir, n=4, locales=("EN",))
    assert len(str.splitlines((folder / "RTP_LX_EN.json").read_text(encoding="utf-8"))) == 5  # the trap is there
    prompts = rtplx.load_prompts("en", rtplx_dir=folder)
    assert len(prompts) == 4 and prompts[1].text.endswith(f"{LINE_SEPARATOR}and on")


def test_files_with_only_the_prompt_load_for_tasks_but_not_for_annotations(tmp_path, data_dir):
    folder = write_rtplx_release(tmp_path / "rtplx", data_dir=data_dir, n=3, locales=("FR",), prompt_only=("FR",))
    assert [p.source_index for p in rtplx.load_prompts("fr", rtplx_dir=folder)] == ["0", "1", "2"]
    with pytest.raises(DataError, match=r"RTP_LX_FR\.json:1: field 'PromptAnnotationsRaw' .* missing"):
        rtplx.load_prompts("fr", rtplx_dir=folder, annotations=True)


def test_another_locale_of_a_language_is_chosen_explicitly(tmp_path, data_dir, monkeypatch):
    folder = write_rtplx_release(tmp_path / "rtplx", data_dir=data_dir, n=2, locales=("ZH-Hans", "ZH-Hant", "PT"))
    (folder / "RTP_LX_ZH-Hant.json").write_text(json.dumps({"Prompt": "繁體字"}, ensure_ascii=False) + "\n",
                                                encoding="utf-8")
    monkeypatch.setenv("XDET_RTPLX_LOCALES", "zh=ZH-Hant")
    assert [p.text for p in rtplx.load_prompts("zh", rtplx_dir=folder)] == ["繁體字"]
    assert rtplx.language_locales("zh") == ["ZH-Hans", "ZH-Hant"] and rtplx.language_locales("pt") == ["PT", "PT-BR"]
    assert rtplx.chosen_locales()["nb"] == "NO-NB" and rtplx.chosen_locales()["hbs"] == "BCMS"
    with pytest.raises(DataError, match="unknown RTP-LX locale 'ZH-Hont'"):
        rtplx.chosen_locales("zh=ZH-Hont")
    with pytest.raises(DataError, match="locale 'PT-BR' is 'pt', not 'zh'"):
        rtplx.chosen_locales("zh=PT-BR")
    monkeypatch.setenv("XDET_RTPLX_LOCALES", "pt=PT-BR")
    with pytest.raises(DataError, match=r"RTP_LX_PT-BR\.json: missing \(RTP-LX locale PT-BR, language pt\); "
                                        r"the folder has RTP_LX_PT\.json"):
        rtplx.load_prompts("pt", rtplx_dir=folder)


@pytest.mark.parametrize(("line", "message"), [
    ('{"Completion": "x"}', r":2: field 'Prompt' missing"),
    ('{"Prompt": 7}', r":2: field 'Prompt' must be a string"),
    ('{"Prompt": "  "}', r":2: field 'Prompt' is empty"),
    ('{"Prompt": "x", "Index": [1]}', r":2: field 'Index' must be an integer or a string"),
    ('["Prompt", "x"]', r":2: not JSON lines: a line holds a list"),
    ('{"Prompt": "x",', r":2: not JSON lines \(one JSON object per line expected\)"),
    ('{"Prompt": "x", "PromptAnnotationsRaw": {"Toxicity": [1, 9, 2]}}', r":2: field PromptAnnotationsRaw\.Toxicity"),
])
def test_a_bad_line_is_named_by_file_line_and_field(tmp_path, line, message):
    path = tmp_path / "RTP_LX_DE.json"
    path.write_text('{"Prompt": "fine", "PromptAnnotationsRaw": {"Toxicity": [1, 1, 1]}}\n' + line + "\n",
                    encoding="utf-8")
    with pytest.raises(DataError, match=r"RTP_LX_DE\.json" + message):
        rtplx.load_prompts("de", rtplx_dir=tmp_path, annotations=True)


def test_a_file_that_is_one_json_array_and_a_folder_without_release_files(tmp_path):
    (tmp_path / "RTP_LX_DE.json").write_text('[{"Prompt": "a"},\n {"Prompt": "b"}]\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"RTP_LX_DE\.json:1: not JSON lines"):
        rtplx.load_prompts("de", rtplx_dir=tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"empty: no RTP-LX release files \(RTP_LX_<LOCALE>\.json\)"):
        rtplx.load_prompts("de", rtplx_dir=empty)
    with pytest.raises(DataError, match="language 'am' is not in the rtplx data"):
        rtplx.load_prompts("am", rtplx_dir=tmp_path)


def test_the_rtplx_hub_copy_is_read_per_locale_file(tmp_path, data_dir, monkeypatch, hub_cache):
    hub = write_rtplx_hub(tmp_path / "RTP-LX", data_dir=data_dir, n=3)
    release = write_rtplx_release(tmp_path / "release", data_dir=data_dir, n=3, old_locales=())
    monkeypatch.setenv("XDET_RTPLX_DATASET", str(hub))
    assert rtplx.describe_source()["source"] == "hub"
    for lang in ("de", "zh", "nb"):
        from_hub = rtplx.load_prompts(lang, annotations=True)
        from_files = rtplx.load_prompts(lang, rtplx_dir=release, annotations=True)
        assert [(p.locale, p.text, p.ratings) for p in from_hub] == [(p.locale, p.text, p.ratings) for p in from_files]
    (hub / "data" / "DE-00000-of-00001.parquet").unlink()
    with pytest.raises(DataError, match=r"RTP-LX hub copy .*data/DE-\*\.parquet"):
        rtplx.load_prompts("de")


def test_ptp_configs_and_splits_of_the_hub_layout(tmp_path, data_dir, monkeypatch, hub_cache):
    hub = write_ptp_hub(tmp_path / "PolygloToxicityPrompts", data_dir=data_dir, n=3, langs=("de", "cs"))
    monkeypatch.setenv("XDET_PTP_DATASET", str(hub))
    small = natural.load_prompts("ptp", "de")
    assert len(small) == 3 and small[0].locale == "ptp-de" and small[0].text.strip()
    monkeypatch.setenv("XDET_PTP_SPLIT", "full")
    assert len(natural.load_prompts("ptp", "de")) == 6
    monkeypatch.setenv("XDET_PTP_SPLIT", "wildchat")
    wild = natural.load_prompts("ptp", "cs")
    assert wild[0].locale == "wildchat-cs" and wild[0].text.startswith("wildchat ")
    monkeypatch.setenv("XDET_PTP_SPLIT", "tiny")
    with pytest.raises(DataError, match="PTP split 'tiny'"):
        natural.load_prompts("ptp", "de")
    monkeypatch.setenv("XDET_PTP_SPLIT", "small")
    with pytest.raises(DataError, match="has no config 'ptp-fr'"):
        natural.load_prompts("ptp", "fr")
    with pytest.raises(DataError, match="language 'fi' is not in the ptp data"):
        ptp.load_prompts("fi")


def test_an_unreachable_hub_copy_is_one_line_naming_the_way_out(monkeypatch, hub_cache):
    monkeypatch.delenv("XDET_RTPLX_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("XDET_RTPLX_DATASET", "someone/not-cached-anywhere")
    with pytest.raises(DataError) as err:
        rtplx.load_prompts("de")
    message = str(err.value)
    assert "'someone/not-cached-anywhere'" in message and "cannot be loaded" in message and "XDET_RTPLX_DIR" in message
    assert len(message.splitlines()) == 1
