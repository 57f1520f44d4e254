"""Integration fixtures shared by every integration test: moto with IAM auth on, the Roles Anywhere emulator,
and the operator.

See tests/support/awsfakes.py for what each fixture provides.
"""

import pytest
from support.awsfakes import emulator_factory, moto_server, rolesanywhere, rolesanywhere_ca  # noqa: F401
from support.operator_harness import RUNNING, operator  # noqa: F401


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report carries each running operator's stacks and log tail: a stalled operator
    (waiting on what?) is diagnosed from the failure itself, even on CI."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for process in list(RUNNING):
            report.sections.append((f"operator {process.log_path.parent.name}: stacks", process.stacks()))
            report.sections.append((f"operator {process.log_path.parent.name}: log tail", process.log()[-6000:]))
