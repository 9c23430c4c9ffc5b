"""Settings: groups with camelCase names on the wire (nested objects or dotted keys), 0.1's flat names
still read with a deprecation, per-field fallback with clear messages, and docs that match the code."""

from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from lsp_server.settings import LEGACY_KEYS, Settings, dotted, leaves, parse_settings
from lsp_server.settings_docs import markdown, vscode

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_and_camel_case_groups():
    settings, problems = parse_settings({"scheduling": {"debounceMs": 80}, "generation": {"maxTokens": 32}})
    assert problems == []
    assert settings.scheduling.debounce_ms == 80 and settings.generation.max_tokens == 32
    assert settings.model_dump(by_alias=True)["scheduling"]["debounceMs"] == 80


def test_dotted_keys_are_the_same_settings():
    nested, _ = parse_settings({"scheduling": {"debounceMs": 80}, "engine": {"remote": {"tlsVerify": False}}})
    flat, problems = parse_settings({"scheduling.debounceMs": 80, "engine.remote.tlsVerify": False})
    assert problems == [] and flat == nested


def test_snake_case_is_accepted_too():
    settings, problems = parse_settings({"scheduling": {"debounce_ms": 7}, "engine": {"kv_cache_memory_mb": 128}})
    assert problems == [] and settings.scheduling.debounce_ms == 7 and settings.engine.kv_cache_memory_mb == 128


def test_legacy_flat_keys_are_read_with_a_deprecation_each():
    deprecations: list[str] = []
    settings, problems = parse_settings({"debounceMs": 5, "engineUrl": "http://h:8000", "apiKey": "k",
                                         "max_lines": 3}, deprecations=deprecations)
    assert problems == []
    assert settings.scheduling.debounce_ms == 5 and settings.engine.url == ["http://h:8000"]
    assert settings.engine.remote.api_key.get_secret_value() == "k" and settings.generation.max_lines == 3
    assert len(deprecations) == 4
    assert any("'debounceMs' is now 'scheduling.debounceMs'" in d for d in deprecations)


def test_every_old_name_maps_to_a_setting_and_new_settings_have_none():
    paths = {path for path, _, _ in leaves()}
    assert set(LEGACY_KEYS.values()) <= paths and len(set(LEGACY_KEYS.values())) == 29
    for old, path in LEGACY_KEYS.items():
        leaf = path.rsplit(".", 1)[1]
        assert old in (leaf, "engineUrl", "engine_url") or to_camel(old) == leaf
    # A setting added after 0.1 is only read in its group.
    settings, problems = parse_settings({"answerEarly": False})
    assert problems == ["unknown setting 'answerEarly' ignored"] and settings.generation.answer_early


def test_nested_section_is_accepted():
    settings, _ = parse_settings({"vllmLs": {"scheduling": {"debounceMs": 10}}})
    assert settings.scheduling.debounce_ms == 10


def test_bad_field_falls_back_alone_and_is_named_by_its_path():
    settings, problems = parse_settings({"scheduling": {"debounceMs": "soon"}, "generation.maxTokens": 12,
                                         "bogus": 1, "prompt": {"nope": 2}})
    assert settings.scheduling.debounce_ms == Settings().scheduling.debounce_ms
    assert settings.generation.max_tokens == 12
    assert any("'scheduling.debounceMs'" in p for p in problems)
    assert any("'bogus'" in p for p in problems)
    assert any("'prompt.nope'" in p for p in problems)


def test_a_group_that_is_not_an_object_falls_back_as_a_whole():
    settings, problems = parse_settings({"engine": 5, "scheduling.debounceMs": 9})
    assert settings.engine == Settings().engine and settings.scheduling.debounce_ms == 9
    assert problems and "'engine'" in problems[0]


def test_out_of_range_is_rejected():
    settings, problems = parse_settings({"generation": {"temperature": 7}})
    assert settings.generation.temperature == 0.0
    assert problems and "generation.temperature" in problems[0]


def test_secret_values_are_masked_in_problems_and_public_dict():
    settings, problems = parse_settings({"engine.remote.apiKey": ["not", "a", "string"]})
    assert problems and "***" in problems[0] and "not" not in problems[0]
    settings, _ = parse_settings({"engine.remote.apiKey": "hunter2"})
    assert "hunter2" not in str(settings.public_dict())
    assert settings.public_dict()["engine"]["remote"]["apiKey"] == "***"


def test_not_an_object():
    settings, problems = parse_settings(["nope"])
    assert settings == Settings()
    assert problems


def test_engine_url_accepts_one_or_many():
    assert parse_settings({"engine.url": "http://h:8000/"})[0].engine.url == ["http://h:8000"]
    assert parse_settings({"engine": {"url": ["http://a", "https://b"]}})[0].engine.url == ["http://a", "https://b"]
    settings, problems = parse_settings({"engine.url": "ftp://x"})
    assert settings.engine.url == [] and problems


def test_base_settings_are_overridden_by_client_leaf_by_leaf():
    base = {"engine": {"model": "cli", "url": ["http://a"]}, "scheduling.debounceMs": 5}
    settings, _ = parse_settings({"engine": {"model": "client"}}, base=base)
    assert settings.engine.model == "client" and settings.engine.url == ["http://a"]
    assert settings.scheduling.debounce_ms == 5


def test_updated_takes_any_spelling_and_is_strict():
    settings = Settings().updated({"scheduling.debounceMs": 1, "generation": {"maxLines": 2}, "earlyStop": False})
    assert (settings.scheduling.debounce_ms, settings.generation.max_lines, settings.generation.early_stop) == (1, 2, False)
    with pytest.raises(ValidationError):
        Settings().updated({"generation.maxLines": 0})


def test_dotted_flattens_every_spelling():
    assert dotted({"scheduling": {"debounceMs": 0}, "maxLines": 2, "prompt.template": {"layout": "{prefix}"}}) == {
        "scheduling.debounceMs": 0, "generation.maxLines": 2, "prompt.template": {"layout": "{prefix}"}}


def test_engine_settings_are_one_comparable_group():
    a, _ = parse_settings({"engine.model": "m", "scheduling.debounceMs": 1})
    b, _ = parse_settings({"engine.model": "m", "scheduling.debounceMs": 2})
    c, _ = parse_settings({"engine.model": "m", "engine.remote.readTimeoutS": 5})
    assert a.engine == b.engine and a.engine != c.engine


def test_configuration_doc_is_generated_from_the_model():
    on_disk = (ROOT / "docs" / "configuration.md").read_text()
    assert on_disk == markdown(), "docs/configuration.md is stale: run `make docs`"


def test_vscode_contribution_lists_every_setting():
    properties = vscode()["properties"]
    assert set(properties) == {f"vllmLs.{path}" for path, _, _ in leaves()}


def test_the_server_reads_old_flat_settings_and_logs_each_deprecation_once(caplog):
    from lsp_server.server import build_server

    server = build_server({"engine": {"model": "from-the-command-line"}})
    with caplog.at_level("WARNING", logger="lsp_server.server"):
        server.apply_settings({"debounceMs": 5, "maxLines": 2})
        server.apply_settings({"debounceMs": 6, "maxLines": 2})
    assert server.settings.scheduling.debounce_ms == 6 and server.settings.generation.max_lines == 2
    assert server.settings.engine.model == "from-the-command-line"
    notes = [r.getMessage() for r in caplog.records if "is now" in r.getMessage()]
    assert len(notes) == 2 and any("'debounceMs' is now 'scheduling.debounceMs'" in n for n in notes)
