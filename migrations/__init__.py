"""Alembic environment for Soundhive: the kernel's branch plus one branch per skill."""
