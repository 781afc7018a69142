"""Soundhive kernel: settings, skills, database, cache, broker, events, errors, HTTP, CLI.

The kernel never imports a skill; skills reach it through the hooks in :mod:`core.hookspecs`.
"""

__version__ = "0.1.0"
