"""The packages' layers, read from every module's source (ast): which package may import what.

rolesanywhere_protocol, rolesanywhere_settings <- rolesanywhere_sidecar <- rolesanywhere_operator: the
protocol and the settings kernel stand alone, the sidecar needs no Kubernetes API, and the operator's pure
modules (parsing, builders, status) need no kopf, so each can be used and tested on its own. Imports are followed through our own modules, so a module
that imports one breaking a rule breaks it too, and the message shows the chain. Imports inside functions
count: a lazy import is still an import.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: How the distribution finds its packages: under these roots, those matching `include`.
FIND = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
ROOTS = tuple(REPO / where for where in FIND["where"])
PROTOCOL, SIDECAR, OPERATOR = "rolesanywhere_protocol", "rolesanywhere_sidecar", "rolesanywhere_operator"
#: The settings kernel both commands declare their settings on.
SETTINGS = "rolesanywhere_settings"
#: The offline CreateSession service the tests and the demo run: a test double, not part of the product.
EMULATOR = "rolesanywhere_emulator"
#: Where the dev kit's packages live (the emulator among them): a second distribution, not the product's.
DEV_KIT_ROOT = REPO / "hack"
#: The operator's modules that may import kopf: its handlers and what serves or feeds them. Every other
#: operator module is pure of kopf.
KOPF_MODULES = frozenset(f"{OPERATOR}.{name}" for name in
                         ("handlers", "webhook", "cli", "resync", "binding_cache", "kube"))
#: Dev tooling: the emulator, the test runner, tests/ and tests/support, hack/localcluster, bench/, moto.
DEV_TOOLING = (EMULATOR, "rolesanywhere_devkit", "pytest", "_pytest", "tests", "support", "localcluster",
               "bench", "moto")


@dataclass(frozen=True)
class Import:
    name: str  # the absolute module name
    line: int


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    imports: tuple[Import, ...]


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def read_modules(roots: tuple[Path, ...]) -> dict[str, Module]:
    """Every module of every package under the roots, with the absolute names it imports."""
    found = {}
    for root in roots:
        for init in sorted(root.glob("*/__init__.py")):
            for path in sorted(init.parent.rglob("*.py")):
                found[module_name(root, path)] = path
    modules = {}
    for name, path in found.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imports = []
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imports += [Import(alias.name, node.lineno) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join([*base, *([node.module] if node.module else [])])
                if target != "__future__":
                    imports.append(Import(target, node.lineno))
                # `from package import module` imports the module too.
                imports += [Import(f"{target}.{alias.name}", node.lineno) for alias in node.names
                            if f"{target}.{alias.name}" in found]
        modules[name] = Module(name, path, tuple(imports))
    return modules


def matches(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def loaded(name: str, modules: dict[str, Module]) -> Iterator[str]:
    """Our modules that importing `name` runs: the module and its parent packages."""
    parts = name.split(".")
    for end in range(1, len(parts) + 1):
        if ".".join(parts[:end]) in modules:
            yield ".".join(parts[:end])


@dataclass(frozen=True)
class Rule:
    name: str
    says: str
    applies: tuple[str, ...]  # the modules it holds (prefixes), minus `exempt`
    forbidden: tuple[str, ...]  # imports they may not make (prefixes), directly or through our modules
    exempt: tuple[str, ...] = ()  # modules it does not hold
    allowed: tuple[str, ...] = ()  # imports it allows, among the forbidden

    def holds(self, module: str) -> bool:
        return matches(module, self.applies) and not matches(module, self.exempt)

    def refuses(self, name: str) -> bool:
        return matches(name, self.forbidden) and not matches(name, self.allowed)


def violations(rule: Rule, modules: dict[str, Module], root: Path = REPO) -> list[str]:
    """One line per module and forbidden import: the module, the import (and through which of our modules,
    where it is not its own), the file and line, and the rule."""
    found = []
    for start in sorted(name for name in modules if rule.holds(name)):
        seen, chains, reported = {start}, [[start]], set()
        while chains:
            chain = chains.pop(0)
            module = modules[chain[-1]]
            for imported in module.imports:
                if rule.refuses(imported.name) and imported.name not in reported:
                    reported.add(imported.name)
                    through = f" through {' -> '.join(chain[1:])}" if len(chain) > 1 else ""
                    where = f"{module.path.relative_to(root)}:{imported.line}"
                    found.append(f"{start} imports {imported.name}{through} ({where}): {rule.says}")
                for name in loaded(imported.name, modules):
                    if name not in seen:
                        seen.add(name)
                        chains.append([*chain, name])
    return found


_KOPF = ", ".join(sorted(name.rpartition(".")[2] for name in KOPF_MODULES))
RULES = [
    Rule("protocol", "the protocol stands alone: it imports neither the sidecar nor the operator, nor kopf, "
         "the Kubernetes client or aiohttp",
         applies=(PROTOCOL,), forbidden=(SIDECAR, OPERATOR, "kopf", "kubernetes", "aiohttp")),
    Rule("settings", "the settings kernel imports only the standard library (the sidecar's probe imports it "
         "every second)",
         applies=(SETTINGS,), forbidden=(PROTOCOL, SIDECAR, OPERATOR, "kopf", "kubernetes", "aiohttp", "httpx",
                                         "cryptography", "yaml")),
    Rule("sidecar", "the sidecar needs no API access: it imports neither the operator, nor kopf, "
         "nor the Kubernetes client",
         applies=(SIDECAR,), forbidden=(OPERATOR, "kopf", "kubernetes")),
    Rule("operator", f"only the operator's {_KOPF} import kopf; its other modules are pure",
         applies=(OPERATOR,), forbidden=("kopf",), exempt=tuple(KOPF_MODULES)),
    Rule("operator-sidecar", "the operator relies on the sidecar only through its contract and settings "
         "(rolesanywhere_sidecar.contract, rolesanywhere_sidecar.settings)",
         applies=(OPERATOR,), forbidden=(SIDECAR,), allowed=(f"{SIDECAR}.contract", f"{SIDECAR}.settings")),
    Rule("emulator", "the emulator is a test double built on the protocol alone: it imports neither "
         "the sidecar nor the operator, nor kopf or the Kubernetes client",
         applies=(EMULATOR,), forbidden=(SIDECAR, OPERATOR, "kopf", "kubernetes"), allowed=(EMULATOR,)),
    Rule("product", "the product imports no dev tooling (the emulator, pytest, tests/support, "
         "localcluster, bench, moto)",
         applies=(PROTOCOL, SETTINGS, SIDECAR, OPERATOR), forbidden=DEV_TOOLING, exempt=(EMULATOR,)),
]
MODULES = {name: module for name, module in read_modules((*ROOTS, DEV_KIT_ROOT)).items()
           if name.partition(".")[0] in (PROTOCOL, SETTINGS, SIDECAR, OPERATOR, EMULATOR)}


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_each_layer_imports_only_what_it_may(rule):
    problems = violations(rule, MODULES)
    assert not problems, "\n".join(problems)


def test_the_rules_cover_every_product_package():
    """A new package gets rules of its own; a moved or renamed one takes its rules along."""
    assert {name.partition(".")[0] for name in MODULES} == {PROTOCOL, SETTINGS, SIDECAR, OPERATOR, EMULATOR}
    for rule in RULES:
        assert any(rule.holds(name) for name in MODULES), f"no module is held by the rule: {rule.says}"
    assert KOPF_MODULES <= MODULES.keys(), f"not operator modules: {sorted(KOPF_MODULES - MODULES.keys())}"
    assert EMULATOR in MODULES, f"{EMULATOR} moved: point EMULATOR at it"


def test_the_distribution_ships_every_product_package():
    packages = sorted(name for name, module in MODULES.items()
                      if module.path.name == "__init__.py" and not name.startswith(EMULATOR))
    unshipped = [name for name in packages if not any(fnmatch(name, pattern) for pattern in FIND["include"])]
    assert not unshipped, f"pyproject.toml's [tool.setuptools.packages.find] include misses {unshipped}"


def test_a_violation_names_the_module_the_import_and_the_rule(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "pure.py").write_text("from . import helper\n")
    (package / "helper.py").write_text("import json\n\n\ndef f():\n    import kopf.testing\n")
    (package / "handlers.py").write_text("import kopf\n")
    rule = Rule("pure", "pure modules import no kopf",
                applies=("pkg",), forbidden=("kopf",), exempt=("pkg.handlers",))
    assert violations(rule, read_modules((tmp_path,)), root=tmp_path) == [
        "pkg.helper imports kopf.testing (pkg/helper.py:5): pure modules import no kopf",
        "pkg.pure imports kopf.testing through pkg.helper (pkg/helper.py:5): pure modules import no kopf",
    ]
