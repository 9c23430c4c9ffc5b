"""Reading `vllm-ls check` specs: good specs become cases, bad ones name their file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lsp_server.tools.check.spec import SpecError, load_spec, load_specs
from lsp_server.tools.check.tomllines import TomlLines

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "check.toml"


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    return [str(p) for p in caught.value.problems]


def test_the_example_spec_loads():
    spec = load_spec(EXAMPLE)
    assert len(spec.cases) >= 8
    assert {c.method for c in spec.cases} == {"inline", "completion"}
    assert {c.trigger for c in spec.cases} == {"invoked", "automatic"}
    assert any(c.settings.get("generation.multiline") == "never" for c in spec.cases)
    assert all(not c.expect.empty for c in spec.cases)


def test_marker_sets_the_position_and_leaves_the_text(tmp_path):
    spec = load_spec(write(tmp_path, """
        [[case]]
        language = "python"
        source = '''
        def f():
            return <cursor>
        '''
        expect = { non_empty = true }
    """))
    case = spec.cases[0]
    assert case.text == "def f():\n    return \n"
    assert case.position == (1, 11)
    assert case.uri.endswith("/spec.case1.py")
    assert case.name == "case 1"
    assert (case.trigger, case.method) == ("invoked", "inline")


def test_position_is_in_utf16_code_units(tmp_path):
    spec = load_spec(write(tmp_path, """
        [[case]]
        language = "python"
        source = "s = '😀é' + <cursor>"
        expect = { non_empty = true }
    """))
    assert spec.cases[0].position == (0, len("s = '") + 2 + 1 + len("' + "))


def test_file_with_line_and_column(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "fib.py").write_text("def fib(n):\n    \n", encoding="utf-8")
    spec = load_spec(write(tmp_path, """
        [[case]]
        file = "src/fib.py"
        cursor = "2:5"
        expect = { contains = "return" }
    """))
    case = spec.cases[0]
    assert case.position == (1, 4)
    assert case.language == "python"  # from the suffix
    assert case.uri == (tmp_path / "src" / "fib.py").resolve().as_uri()
    assert case.name == "fib.py:2"


def test_a_custom_marker_and_crlf_lines(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_bytes(b'[[case]]\nlanguage = "c"\nmarker = "@@"\nsource = "int x;\\r\\nint y = @@;"\n'
                     b'expect = { non_empty = true }\n')
    assert load_spec(path).cases[0].position == (1, 8)


def test_defaults_and_expectations_merge_key_by_key(tmp_path):
    spec = load_spec(write(tmp_path, """
        [settings]
        scheduling.debounceMs = 0
        [defaults]
        language = "python"
        trigger = "automatic"
        expect = { non_empty = true, max_lines = 3 }

        [[case]]
        name = "a"
        source = "x = <cursor>"
        settings = { generation.multiline = "never" }
        expect = { max_lines = 1, contains = ["1", "2"] }

        [[case]]
        name = "b"
        source = "y = <cursor>"
        trigger = "invoked"
    """))
    a, b = spec.cases
    assert a.expect.non_empty is True and a.expect.max_lines == 1 and a.expect.contains == ("1", "2")
    assert b.expect.max_lines == 3 and b.trigger == "invoked" and a.trigger == "automatic"
    assert a.settings == {"scheduling.debounceMs": 0, "generation.multiline": "never"}
    assert b.settings == {"scheduling.debounceMs": 0}


def test_snake_case_settings_are_sent_as_camel_case(tmp_path):
    spec = load_spec(write(tmp_path, """
        [[case]]
        language = "python"
        source = "<cursor>"
        settings = { generation = { max_lines = 2 } }
        expect = { non_empty = false }
    """))
    assert spec.cases[0].settings == {"generation.maxLines": 2}
    assert spec.cases[0].expect.non_empty is False


@pytest.mark.parametrize(("body", "line", "words"), [
    ('[[case]]\nlanguage = "python"\nsource = "<cursor>"\nexpect = { contians = "x" }\n', 4,
     "unknown expectation 'contians'; did you mean 'contains'?"),
    ('[[case]]\nlanguage = "python"\nsource = "x"\nexpect = { non_empty = true }\n', 3,
     "cursor marker '<cursor>' not found"),
    ('[[case]]\nlanguage = "python"\nsource = "<cursor><cursor>"\nexpect = { non_empty = true }\n', 3,
     "found 2 times"),
    ('[[case]]\nsource = "<cursor>"\nexpect = { non_empty = true }\n', 1, "no language"),
    ('[[case]]\nlanguage = "python"\nsource = "<cursor>"\n', 1, "could never fail"),
    ('[[case]]\nlanguage = "python"\nsource = "<cursor>"\ntrigger = "manual"\nexpect = { non_empty = true }\n',
     4, "`trigger` must be one of 'invoked', 'automatic'"),
    ('[[case]]\nlanguage = "python"\nsource = "<cursor>"\nmethod = "hover"\nexpect = { non_empty = true }\n',
     4, "`method` must be one of"),
    ('[[case]]\nlanguage = "python"\nsource = "a\\nb"\ncursor = "3:1"\nexpect = { non_empty = true }\n',
     4, "cursor line 3 is outside the text (1 to 2)"),
    ('[[case]]\nlanguage = "python"\nsource = "ab"\ncursor = "1:4"\nexpect = { non_empty = true }\n',
     4, "cursor column 4 is outside line 1 (1 to 3)"),
    ('[[case]]\nlanguage = "python"\nsource = "ab"\ncursor = "1"\nexpect = { non_empty = true }\n',
     4, 'cursor must be "LINE:COLUMN"'),
    ('[[case]]\nlanguage = "python"\nsource = "<cursor>"\n[case.expect]\nnon_empty = true\nregex = "("\n', 6,
     "regex '(' does not compile"),
    ('[[case]]\nlanguage = "python"\nsource = "<cursor>"\n[case.expect]\nmax_lines = 0\n', 5,
     "max_lines must be a whole number of at least 1"),
    ('[[case]]\nlanguage = "python"\nsource = "<cursor>"\n[case.expect]\nmax_lines = true\n', 5,
     "max_lines must be a whole number"),
    ('[[case]]\nlanguage = "python"\nsource = "<cursor>"\n[case.expect]\nmax_latency_ms = -5\n', 5,
     "max_latency_ms must be a positive number"),
    ('[[case]]\nlanguage = "python"\nsource = "<cursor>"\n[case.expect]\ncontains = []\n', 5,
     "non-empty list of strings"),
    ('[[case]]\nlanguage = "python"\nsource = "<cursor>"\n[case.expect]\nnon_empty = "yes"\n', 5,
     "`non_empty` must be true or false"),
    ('[[case]]\nlanguage = "python"\nfile = "a.py"\nsource = "<cursor>"\nexpect = { non_empty = true }\n', 1,
     "exactly one of `file`"),
    ('[[case]]\nfile = "missing.py"\ncursor = "1:1"\nexpect = { non_empty = true }\n', 2, "no such file"),
    ('[[case]]\nlanguage = "python"\nsource = "<cursor>"\nexpect = { non_empty = true }\nsetings = {}\n', 5,
     "unknown case key 'setings'; did you mean 'settings'?"),
    ('title = "x"\n[[case]]\nlanguage = "python"\nsource = "<cursor>"\nexpect = { non_empty = true }\n', 1,
     "unknown top-level key 'title'"),
    ('[defaults]\nlanguage = "python"\n', 1, "no cases"),
    ('case = 3\n', 1, "must be an array of tables"),
])
def test_bad_specs_name_the_line(tmp_path, body, line, words):
    path = write(tmp_path, body)
    found = problems(path)
    assert any(p.startswith(f"{path}:{line}: ") and words in p for p in found), found


@pytest.mark.parametrize(("settings", "words"), [
    ("generation.maxLiness = 3", "unknown setting 'generation.maxLiness'"),
    ("generation.maxLines = 0", "setting 'generation.maxLines'"),
    ('generation.multiline = "sometimes"', "setting 'generation.multiline'"),
    ('engine.model = "/models/x"', "'engine.model' chooses the engine, which a spec does not: pass --model"),
    ('engine.url = "http://gpu:8000"', "pass --engine-url"),
    ('model = "/models/x"', "'engine.model' chooses the engine"),  # vllm-ls 0.1's flat name
    ('engine.remote.apiKey = "k"', "is a secret and does not belong in a spec file"),
])
def test_bad_settings_are_refused_with_their_line(tmp_path, settings, words):
    path = write(tmp_path, f"""
        [settings]
        scheduling.debounceMs = 0
        {settings}

        [[case]]
        language = "python"
        source = "<cursor>"
        expect = {{ non_empty = true }}
    """)
    found = problems(path)
    assert any(p.startswith(f"{path}:3: ") and words in p for p in found), found
    assert not any("using the default" in p or "ignored" in p for p in found), found


def test_engine_settings_only_for_the_whole_spec(tmp_path):
    path = write(tmp_path, """
        [settings]
        engine.maxModelLen = 1024
        [[case]]
        language = "python"
        source = "<cursor>"
        settings = { engine.kvCacheMemoryMb = 512 }
        expect = { non_empty = true }
    """)
    found = problems(path)
    assert any(p.startswith(f"{path}:6: ") and "needs a new engine" in p for p in found), found


def test_engine_settings_at_their_default_are_still_engine_settings(tmp_path):
    path = write(tmp_path, """
        [settings]
        maxModelLen = 2048
        [[case]]
        language = "python"
        source = "<cursor>"
        settings = { engine = { maxModelLen = 2048 } }
        expect = { non_empty = true }
    """)
    assert any(p.startswith(f"{path}:6: ") and "needs a new engine" in p for p in problems(path))


def test_specs_of_one_run_must_agree_on_the_engine(tmp_path):
    case = '[[case]]\nlanguage = "python"\nsource = "<cursor>"\nexpect = { non_empty = true }\n'
    a = write(tmp_path, f"[settings]\nengine.maxModelLen = 1024\n{case}", "a.toml")
    b = write(tmp_path, f"[settings]\n\nmax_model_len = 4096\n{case}", "b.toml")
    assert load_specs([a, a])[0].engine_settings == {"engine.maxModelLen": 1024}
    with pytest.raises(SpecError) as caught:
        load_specs([a, b])
    assert str(caught.value).startswith(
        f"{b}:3: engine.maxModelLen = 4096 differs from engine.maxModelLen = 1024 in {a}:2")


def test_every_problem_of_every_file_is_reported(tmp_path):
    a = write(tmp_path, """
        [[case]]
        name = "x"
        language = "python"
        source = "<cursor>"
        expect = { contains = "y", max_lines = -1 }

        [[case]]
        name = "x"
        language = "python"
        source = "<cursor>"
        expect = { non_empty = true }
    """, "a.toml")
    b = write(tmp_path, "[[case]\n", "b.toml")
    with pytest.raises(SpecError) as caught:
        load_specs([a, b, tmp_path / "missing.toml"])
    text = str(caught.value).splitlines()
    assert text[0].startswith(f"{a}:5: max_lines must be")
    assert text[1].startswith(f"{a}:8: case name 'x' is already used on line 1")
    assert text[2].startswith(f"{b}:1: not valid TOML: ")
    assert text[3] == f"{tmp_path / 'missing.toml'}: no such spec file"


def test_toml_syntax_errors_give_line_and_column(tmp_path):
    path = write(tmp_path, '[[case]]\nlanguage = "python"\nsource = <cursor>\n')
    assert problems(path) == [f"{path}:3: not valid TOML: Invalid value (column 10)"]


def test_an_unterminated_string_points_at_the_end(tmp_path):
    path = write(tmp_path, "[[case]]\nsource = '''\ndef f():\n")
    [problem] = problems(path)
    assert problem.startswith(f"{path}:3: not valid TOML: ") and problem.endswith("at the end of the file")


class TestTomlLines:
    TEXT = textwrap.dedent('''
        top = 1
        [settings]
        a = 1
        [[case]]
        name = "one"
        source = """
        [[case]]
        not_a_key = 1
        """
        settings = { x = 1 }
        [case.expect]
        y = 2
        [[case]]
        "quoted key" = 3
        sub.dotted = 4
        [case.expect]
        z = 5
    ''').lstrip("\n")

    def test_keys_tables_and_array_elements(self):
        lines = TomlLines(self.TEXT)
        assert lines.line("top") == 1
        assert lines.line("settings") == 2 and lines.line("settings", "a") == 3
        assert lines.line("case", 0) == 4 and lines.line("case", 0, "name") == 5
        assert lines.line("case", 0, "expect") == 11
        assert lines.line("case", 0, "expect", "y") == 12
        assert lines.line("case", 1) == 13
        assert lines.line("case", 1, "quoted key") == 14
        assert lines.line("case", 1, "sub", "dotted") == 15
        assert lines.line("case", 1, "expect", "z") == 17

    def test_multi_line_strings_are_not_read_as_toml(self):
        lines = TomlLines(self.TEXT)
        assert lines.line("case", 0, "not_a_key") == 4  # falls back to its case
        assert lines.line("case") == 4  # the quoted [[case]] did not start a case

    def test_unknown_paths_fall_back_to_the_nearest_known(self):
        lines = TomlLines(self.TEXT)
        assert lines.line("case", 0, "settings", "x") == 10  # inside an inline table: its key's line
        assert lines.line("nothing") == 1
