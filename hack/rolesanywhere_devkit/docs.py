"""Generate README.md's reference tables from their one source each, or check that they match.

    make docs                                  rewrite the generated blocks in README.md
    python -m rolesanywhere_devkit.docs --check  exit 1, naming the block, when README.md has drifted

Sources: the CRD (crds/rolesanywherebindings.rolesanywhere.dev.yaml, each field's description), the
annotations and labels (rolesanywhere_operator/constants.py, each name's `#:` comment), the chart
values (charts/rolesanywhere-operator/values.yaml, each key's `# --` comment), and the operator and
sidecar settings (their settings modules).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterator

import yaml

from rolesanywhere_devkit import REPO

README = REPO / "README.md"
CRD = REPO / "crds" / "rolesanywherebindings.rolesanywhere.dev.yaml"
VALUES = REPO / "charts" / "rolesanywhere-operator" / "values.yaml"
CONSTANTS = REPO / "operator" / "rolesanywhere_operator" / "constants.py"

BLOCK = re.compile(r"(<!-- BEGIN GENERATED: (?P<name>[a-z-]+) -->\n)(?P<body>.*?)(<!-- END GENERATED: (?P=name) -->)",
                   re.DOTALL)


class MissingDocumentation(ValueError):
    """A field, key or name has no description in its source."""


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


# --- The CRD -------------------------------------------------------------------------------------------


def _schema_fields(schema: dict, prefix: str, required: set[str]) -> Iterator[tuple[str, dict, bool]]:
    for name, field in schema.get("properties", {}).items():
        path = f"{prefix}.{name}"
        yield path, field, name in required
        if field.get("type") == "object" and "properties" in field:
            yield from _schema_fields(field, path, set(field.get("required", [])))


def _constraints(field: dict) -> str:
    parts = []
    if "enum" in field:
        parts.append("one of " + ", ".join(f"`{v}`" for v in field["enum"]))
    if "minimum" in field or "maximum" in field:
        parts.append(f"{field.get('minimum', '')}..{field.get('maximum', '')}")
    if "pattern" in field:
        pattern = field["pattern"]
        arn = re.match(r"\^arn:\(([\w|-]+)\):(\w+):", pattern)
        parts.append(f"{arn.group(2)} ARN in {arn.group(1).replace('|', ', ')}" if arn else f"`{pattern}`")
    if "maxLength" in field and "pattern" not in field and "enum" not in field:
        parts.append(f"at most {field['maxLength']} characters")
    return "; ".join(parts)


def crd_fields_table() -> str:
    crd = yaml.safe_load(CRD.read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rows = ["| Field | Type | Required | Default | Allowed | Description |", "| --- | --- | --- | --- | --- | --- |"]
    for path, field, required in _schema_fields(spec, "spec", set(spec.get("required", []))):
        if "description" not in field:
            raise MissingDocumentation(f"{CRD.name}: {path} has no description")
        kind = field.get("type", "int-or-string")
        if kind == "array":
            kind = f"[]{field['items'].get('type', 'object')}"
        default = f"`{field['default']}`" if "default" in field else ""
        rows.append(
            f"| `{path}` | {kind} | {'yes' if required else ''} | {default} | {_cell(_constraints(field))} "
            f"| {_cell(field['description'])} |"
        )
    return "\n".join(rows) + "\n"


# --- Annotations and labels ----------------------------------------------------------------------------


def annotations_table() -> str:
    from rolesanywhere_operator import constants

    rows = ["| Name | Kind | Meaning |", "| --- | --- | --- |"]
    comment: list[str] = []
    for line in CONSTANTS.read_text().splitlines():
        if line.startswith("#:"):
            comment.append(line[2:].strip())
            continue
        match = re.match(r"([A-Z_]+_(ANNOTATION|LABEL)) = ", line)
        if match:
            if not comment:
                raise MissingDocumentation(f"{CONSTANTS.name}: {match.group(1)} has no `#:` comment")
            name, kind = getattr(constants, match.group(1)), match.group(2).lower()
            rows.append(f"| `{name}` | {kind} | {_cell(' '.join(comment))} |")
        comment = []
    return "\n".join(rows) + "\n"


# --- Chart values --------------------------------------------------------------------------------------


def values_rows() -> Iterator[tuple[str, object, str]]:
    """(dotted key, default, description) for every key carrying a `# --` comment, in file order."""
    values = yaml.safe_load(VALUES.read_text())
    stack: list[tuple[int, str]] = []
    description: list[str] = []
    for line in VALUES.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            description = [stripped[4:].strip()]
            continue
        match = re.match(r"^( *)([A-Za-z][\w]*):", line)
        if not match:
            continue
        indent, key = len(match.group(1)), match.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        path = [k for _, k in stack]
        if description:
            node = values
            for k in path:
                node = node[k]
            yield ".".join(path), node, " ".join(description)
            description = []


def values_table() -> str:
    rows = ["| Key | Default | Description |", "| --- | --- | --- |"]
    documented = set()
    for key, default, description in values_rows():
        documented.add(key)
        shown = yaml.safe_dump(default, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()
        rows.append(f"| `{key}` | `{_cell(shown)}` | {_cell(description)} |")
    undocumented = [key for key in _leaf_keys(yaml.safe_load(VALUES.read_text()))
                    if not any(key == d or key.startswith(d + ".") for d in documented)]
    if undocumented:
        raise MissingDocumentation(f"{VALUES.name}: no `# --` comment for {', '.join(undocumented)}")
    return "\n".join(rows) + "\n"


def _leaf_keys(tree: dict, prefix: str = "") -> Iterator[str]:
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _leaf_keys(value, path + ".")
        else:
            yield path


# --- Settings ------------------------------------------------------------------------------------------


def operator_settings_table() -> str:
    from rolesanywhere_operator import settings

    return settings.SETTINGS.reference_markdown()


def sidecar_settings_table() -> str:
    from rolesanywhere_sidecar import settings

    return settings.SETTINGS.reference_markdown()


def app_env_table() -> str:
    from rolesanywhere_operator import constants
    from rolesanywhere_operator.injection import app_env_fields

    fields = app_env_fields(region="REGION")
    rows = ["| Variable | Value | With `spec.delivery` | Group | Meaning |", "| --- | --- | --- | --- | --- |"]
    for variable in constants.APP_ENV:
        deliveries = ", ".join(f"`{d}`" for d in variable.deliveries)
        rows.append(f"| `{variable.name}` | `{variable.value.format(**fields)}` | {deliveries} | {variable.group} "
                    f"| {_cell(variable.meaning)} |")
    return "\n".join(rows) + "\n"


def reasons_table() -> str:
    from rolesanywhere_operator import reasons

    return reasons.reference_markdown()


GENERATORS: dict[str, Callable[[], str]] = {
    "reasons": reasons_table,
    "crd-fields": crd_fields_table,
    "annotations": annotations_table,
    "app-env": app_env_table,
    "chart-values": values_table,
    "operator-settings": operator_settings_table,
    "sidecar-settings": sidecar_settings_table,
}


def render(readme: str) -> str:
    """README text with every generated block replaced by what its source gives now."""
    found = {m.group("name") for m in BLOCK.finditer(readme)}
    missing = set(GENERATORS) - found
    if missing:
        raise MissingDocumentation(f"README.md lacks the generated blocks {', '.join(sorted(missing))}")
    return BLOCK.sub(lambda m: m.group(1) + GENERATORS[m.group("name")]() + m.group(4), readme)


def drifted_blocks(readme: str) -> list[str]:
    current = {m.group("name"): m.group("body") for m in BLOCK.finditer(readme)}
    wanted = {m.group("name"): m.group("body") for m in BLOCK.finditer(render(readme))}
    return sorted(name for name in wanted if current.get(name) != wanted[name])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when README.md has drifted")
    args = parser.parse_args(argv)
    readme = README.read_text()
    try:
        if args.check:
            drifted = drifted_blocks(readme)
            if drifted:
                print(f"README.md is out of date in: {', '.join(drifted)}; run `make docs`",
                      file=sys.stderr)
                return 1
            return 0
        rendered = render(readme)
    except MissingDocumentation as error:
        print(f"rolesanywhere_devkit.docs: {error}", file=sys.stderr)
        return 1
    tmp = README.with_suffix(".md.tmp")
    tmp.write_text(rendered)
    tmp.replace(README)
    return 0


if __name__ == "__main__":
    sys.exit(main())
