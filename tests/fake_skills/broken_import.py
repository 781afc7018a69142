"""A skill whose import fails: proves disabled skills are never imported."""

raise RuntimeError("this module must never be imported while disabled")
