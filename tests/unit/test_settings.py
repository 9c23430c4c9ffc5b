"""Settings: camelCase, per-field fallback with clear messages, and docs that match the code."""

from pathlib import Path

from lsp_server.settings import Settings, parse_settings
from lsp_server.settings_docs import markdown, vscode

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_and_camel_case():
    settings, problems = parse_settings({"debounceMs": 80, "maxTokens": 32})
    assert problems == []
    assert settings.debounce_ms == 80 and settings.max_tokens == 32
    assert settings.model_dump(by_alias=True)["debounceMs"] == 80


def test_nested_section_is_accepted():
    settings, _ = parse_settings({"vllmLs": {"debounceMs": 10}})
    assert settings.debounce_ms == 10


def test_bad_field_falls_back_alone_and_is_named():
    settings, problems = parse_settings({"debounceMs": "soon", "maxTokens": 12, "bogus": 1})
    assert settings.debounce_ms == Settings().debounce_ms
    assert settings.max_tokens == 12
    assert any("debounceMs" in p for p in problems)
    assert any("bogus" in p for p in problems)


def test_out_of_range_is_rejected():
    settings, problems = parse_settings({"temperature": 7})
    assert settings.temperature == 0.0
    assert problems and "temperature" in problems[0]


def test_not_an_object():
    settings, problems = parse_settings(["nope"])
    assert settings == Settings()
    assert problems


def test_engine_url_accepts_one_or_many():
    assert parse_settings({"engineUrl": "http://h:8000/"})[0].engine_url == ["http://h:8000"]
    assert parse_settings({"engineUrl": ["http://a", "https://b"]})[0].engine_url == ["http://a", "https://b"]
    settings, problems = parse_settings({"engineUrl": "ftp://x"})
    assert settings.engine_url == [] and problems


def test_base_settings_are_overridden_by_client():
    settings, _ = parse_settings({"model": "client"}, base={"model": "cli", "debounceMs": 5})
    assert settings.model == "client" and settings.debounce_ms == 5


def test_configuration_doc_is_generated_from_the_model():
    on_disk = (ROOT / "docs" / "configuration.md").read_text()
    assert on_disk == markdown(), "docs/configuration.md is stale: run `make docs`"


def test_vscode_contribution_lists_every_setting():
    properties = vscode()["properties"]
    assert set(properties) == {f"vllmLs.{f.alias}" for f in Settings.model_fields.values()}
