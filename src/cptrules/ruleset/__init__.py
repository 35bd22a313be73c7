"""Rule files → a compiled, immutable Ruleset: loading, validation, type checks, tests."""

from .compile import compile_ruleset, load_ruleset
from .model import Rule, Ruleset, Table

__all__ = ["Rule", "Ruleset", "Table", "compile_ruleset", "load_ruleset"]
