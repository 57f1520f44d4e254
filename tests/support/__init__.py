"""Helpers shared by the test tiers (fixtures for real AWS fakes: moto and the Roles Anywhere emulator)."""
