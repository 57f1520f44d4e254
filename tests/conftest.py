"""The test tiers by folder: tests/integration is marked `integration`, tests/node `node` and `integration`
(it needs binaries and a cluster too, so `-m 'not integration'`, the unit tier, leaves it out).

The shared fixtures (the pinned binaries, the local control plane, a fresh namespace per test, moto, the
Roles Anywhere emulator, the operator) come from the dev kit's pytest plugin,
rolesanywhere_devkit.pytest_plugin (hack/), registered when hack/venv.sh installs the kit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    integration_dir, node_dir = TESTS / "integration", TESTS / "node"
    for item in items:
        if integration_dir in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)
        if node_dir in Path(item.fspath).parents:
            item.add_marker(pytest.mark.node)
            item.add_marker(pytest.mark.integration)
