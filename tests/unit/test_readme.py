"""The README's configuration table is `ordo config`'s output, so it cannot drift from the settings."""

from __future__ import annotations

from click.testing import CliRunner

from ordo.cli.main import main
from tests.fixtures.datasets import REPO_ROOT


def test_readme_configuration_table_is_current() -> None:
    table = CliRunner().invoke(main, ["config"]).output.strip()
    assert table.startswith("| variable | default | description |")
    readme = (REPO_ROOT / "README.md").read_text()
    assert table in readme, "README's configuration table is stale: paste the output of `ordo config`"
