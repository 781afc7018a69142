"""Skill packages that exist only for kernel tests (loaded through synthetic entry points)."""
