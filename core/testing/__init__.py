"""Soundhive's pytest kit (loaded through the ``pytest11`` entry point): real services,
a migrated database, a live HTTP server, a local JWKS Auth Server and Dramatiq workers.
Third-party skills get the same fixtures by installing Soundhive."""
