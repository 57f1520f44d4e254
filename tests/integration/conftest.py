"""Integration fixtures shared by every integration test: moto with IAM auth on, the Roles Anywhere emulator,
and the operator.

See tests/support/awsfakes.py for what each fixture provides.
"""

from support.awsfakes import emulator_factory, moto_server, rolesanywhere, rolesanywhere_ca  # noqa: F401
from support.operator_harness import operator  # noqa: F401
