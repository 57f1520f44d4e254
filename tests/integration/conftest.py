"""Integration fixtures shared by every integration test: moto with IAM auth on, and the Roles Anywhere emulator.

See tests/support/awsfakes.py for what each fixture provides.
"""

from support.awsfakes import emulator_factory, moto_server, rolesanywhere, rolesanywhere_ca  # noqa: F401
