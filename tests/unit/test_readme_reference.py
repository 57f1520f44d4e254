"""README.md's reference tables cannot drift from the CRD, the constants, the chart values and the settings."""

from __future__ import annotations

import pytest
from rolesanywhere_devkit import docs


def test_readme_reference_tables_match_their_sources():
    assert docs.drifted_blocks(docs.README.read_text()) == [], "run `make docs`"


def test_a_changed_source_is_reported_as_drift(monkeypatch):
    readme = docs.README.read_text()
    monkeypatch.setattr(docs, "values_table", lambda: "| Key | Default | Description |\n| --- | --- | --- |\n")
    monkeypatch.setitem(docs.GENERATORS, "chart-values", docs.values_table)
    assert docs.drifted_blocks(readme) == ["chart-values"]


def test_every_crd_field_chart_value_and_annotation_is_in_the_readme():
    readme = docs.README.read_text()
    for key, _, _ in docs.values_rows():
        assert f"| `{key}` |" in readme
    for line in docs.crd_fields_table().splitlines()[2:]:
        assert line in readme
    assert "| `rolesanywhere.dev/binding` | annotation |" in readme


def test_an_undocumented_values_key_is_refused(tmp_path, monkeypatch):
    values = tmp_path / "values.yaml"
    values.write_text("# -- documented\nfirst: 1\nsecond: 2\n")
    monkeypatch.setattr(docs, "VALUES", values)
    with pytest.raises(docs.MissingDocumentation, match="second"):
        docs.values_table()
