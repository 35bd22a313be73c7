"""Finding codes by what they are: ranked search over the texts we may show, and the rules
(rules/search.yaml) that read a question asking for a code."""

from .index import CATALOGUE_SOURCE, Match, Query, SearchIndex, descriptor_label
from .rules import SearchRules, compile_search_rules, load_search_rules, words

__all__ = ["CATALOGUE_SOURCE", "Match", "Query", "SearchIndex", "SearchRules", "compile_search_rules", "descriptor_label",
           "load_search_rules", "words"]
