"""README.md tells the truth about the code: its Contents, the option table, the configuration keys.

The key and option lists are read from the code that enforces them (qgconfig.KEYS, censys
settings.SECTIONS, cli.COMMON_OPTIONS), so a key or option added without documentation fails here.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from qualys_connector import cli, qgconfig
from qualys_connector.censys import settings

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def outside_code(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def section(title: str) -> str:
    return README.split(f"\n{title}\n", 1)[1].split("\n## ", 1)[0]


def anchor(title: str) -> str:
    return "#" + re.sub(r"[^a-z0-9 _-]", "", title.lower()).replace(" ", "-")


def test_the_contents_list_every_top_level_section_in_order():
    titles = [t for t in re.findall(r"^## (.+)$", outside_code(README), flags=re.M) if t != "Contents"]
    listed = re.findall(r"\]\((#[^)]+)\)", section("## Contents"))
    top = [a for a in listed if a in {anchor(t) for t in titles}]
    assert top == [anchor(t) for t in titles]


def test_every_link_of_the_contents_names_a_heading():
    headings = {anchor(t) for t in re.findall(r"^#{2,4} (.+)$", outside_code(README), flags=re.M)}
    assert [a for a in re.findall(r"\]\((#[^)]+)\)", section("## Contents")) if a not in headings] == []


def key_table(text: str) -> set[str]:
    """The keys a README table documents: every `key` in a row's first cell."""
    return {k for row in re.findall(r"^\| ([^|]+) \|", text, flags=re.M) for k in re.findall(r"`([A-Za-z_]+)`", row)}


def test_every_qualysguard_yaml_key_is_in_the_readme_table_and_the_example_file():
    table = key_table(section("## QualysGuard.yaml"))
    example = (REPO / "QualysGuard.yaml.example").read_text()
    assert sorted(set(qgconfig.KEYS) - table) == []
    assert sorted(table - set(qgconfig.KEYS)) == []
    assert [k for k in qgconfig.KEYS if not re.search(rf"^#? ?{k}:", example, flags=re.M)] == []


def test_every_settings_yaml_key_of_censys_qualys_is_in_the_readme_and_the_example_file():
    text = section("## censys-qualys")
    example = (REPO / "settings_example.yaml").read_text()
    for name, keys in settings.SECTIONS.items():
        assert re.search(rf"^{name}:", example, flags=re.M), name
        for key in keys:
            assert f"`{key}`" in text or f".{key}`" in text, key
            if key not in ("addIps", "excludeIps"):        # aliases: the README names them, the example does not
                assert re.search(rf"^\s*#? ?{key}:", example, flags=re.M), key


def option_table() -> dict[str, str]:
    rows = re.findall(r"^\| `-([a-z0-9]+)(?:=[A-Z]+)?` \| `-([a-z]+)` \|", section("## qualys-connector"), flags=re.M)
    return dict(rows)


def test_every_qualys_connector_option_is_in_the_readme_option_table_and_back():
    documented = set(option_table())
    # -runondc (accepted and ignored), -h and -v have their own paragraph below the table
    options = {o for o in cli.COMMON_OPTIONS if o not in ("runondc", "help", "version")}
    assert sorted(options - documented) == []
    assert sorted(documented - options) == []
    text = section("## qualys-connector")
    assert "`-runondc=n`" in text and "`-h` / `--help`" in text and "`-v` / `--version`" in text


def test_the_usage_screen_names_every_option_of_the_readme_table():
    screen = {re.sub(r"[\[\]]", "", line.split()[0]).split("=")[0] for line in cli.OPTION_TABLE.splitlines()
              if line.startswith("  -")}
    assert sorted(f"-{o}" for o in option_table() if f"-{o}" not in screen) == []


@pytest.mark.parametrize("option, short", sorted(option_table().items()))
def test_the_short_form_in_the_table_selects_that_option(option, short):
    from qualys_connector.argv import normalize
    args = normalize([f"-{short}=x" if cli.COMMON_OPTIONS[option] else f"-{short}"], cli.COMMON_OPTIONS)
    assert args[0].split("=")[0] == f"--{option}"


def test_every_process_multiple_option_is_in_its_section():
    text = section("## process-multiple")
    for option in set(cli.MULTI_OPTIONS) - set(cli.COMMON_OPTIONS):
        assert f"-{option}" in text, option
