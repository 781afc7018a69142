"""A module that forgot its ``SKILL`` manifest."""
