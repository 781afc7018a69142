"""Soundhive's built-in skills, each a package found through the ``soundhive.skills`` entry points."""
