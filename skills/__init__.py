"""Soundhive's built-in skills: packages found through the ``soundhive.skills`` entry points."""
