"""JSON Schemas of the rule-file shapes; validated with jsonschema, located with line_of."""

from __future__ import annotations

import difflib
import re
from typing import Any

from jsonschema import Draft202012Validator

from ..errors import RuleProblem
from .source import line_of

_ID = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]*$"}
_NAME = {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"}
_LITERAL = {"type": ["string", "number", "boolean"]}

MANIFEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "tables", "faq", "questions", "answers"],
    "properties": {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "tables": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "faq": {"type": "string"},
        "questions": {"type": "string"},
        "answers": {"type": "string"},
        "topics": {"type": "string"},
    },
}

TABLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["table", "hit", "outputs", "rules"],
    "properties": {
        "table": _NAME,
        "description": {"type": "string"},
        "hit": {"enum": ["first", "unique", "collect"]},
        "outputs": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": _NAME,
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["type", "default"],
                "properties": {
                    "type": {"enum": ["string", "double", "bool", "int", "list"]},
                    "values": {"type": "array", "items": _LITERAL, "minItems": 1},
                    "default": {"type": ["string", "number", "boolean", "array"]},
                    "doc": {"type": "string"},
                },
            },
        },
        "rules": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "when", "because"],
                "anyOf": [{"required": ["set"]}, {"required": ["let"]}],
                "properties": {
                    "id": _ID,
                    "when": {"type": "string", "minLength": 1},
                    "set": {"type": "object", "propertyNames": _NAME,
                            "additionalProperties": _LITERAL},
                    "let": {"type": "object", "propertyNames": _NAME,
                            "additionalProperties": {"type": "string", "minLength": 1}},
                    "because": {"type": "string", "minLength": 1},
                    "source": {"type": "string"},
                },
            },
        },
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "given", "expect"],
                "properties": {
                    "name": {"type": "string"},
                    "given": {"type": "object"},
                    "expect": {"type": "object"},
                    "fired": {"type": "array", "items": _ID},
                },
            },
        },
    },
}

FAQ_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["entries"],
    "properties": {
        "description": {"type": "string"},
        "entries": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["intent", "question", "applies_when"],
                "properties": {
                    "intent": _NAME,
                    "question": {"type": "string", "minLength": 1},
                    "applies_when": {"type": "string", "minLength": 1},
                },
            },
        },
    },
}

_WEIGHTED = {"type": "object", "additionalProperties": {"type": "number"}}

QUESTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["intents", "code_prefixes"],
    "properties": {
        "description": {"type": "string"},
        "fuzzy_min_score": {"type": "number", "minimum": 50, "maximum": 100},
        "runner_up_margin": {"type": "number", "minimum": 0},
        "min_score": {"type": "number", "minimum": 0},
        "code_prefixes": {"type": "array", "items": {"type": "string"}},
        "modifiers": {"type": "array", "items": {"type": "string"}},
        "abbreviations": {"type": "object", "additionalProperties": {"type": "string"}},
        "ordinary_words": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "year_cues": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "word_classes": {"type": "object", "propertyNames": _NAME,
                         "additionalProperties": {"type": "array", "minItems": 1,
                                                  "items": {"type": "string", "minLength": 1}}},
        "patterns": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["when", "intent", "weight"],
                "properties": {
                    "when": {"type": "string", "minLength": 1, "maxLength": 200},
                    "intent": _NAME,
                    "weight": {"type": "number"},
                },
            },
        },
        "intents": {
            "type": "object",
            "propertyNames": _NAME,
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "doc": {"type": "string"},
                    "phrases": _WEIGHTED,
                    "keywords": _WEIGHTED,
                    "bare_code": {"type": "boolean"},
                    "needs_code": {"type": "boolean"},
                    "source_code_format": {"type": "string", "maxLength": 100},
                    "example": {"type": "string"},
                },
            },
        },
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["q", "intent"],
                "properties": {
                    "q": {"type": "string"},
                    "intent": _NAME,
                    "codes": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}


def validate(document: Any, schema: dict[str, Any], path: str) -> tuple[list[RuleProblem], bool]:
    """Every schema violation in a document, each on the line of the offending key, and whether
    the document can still be compiled: an unknown field is reported on its own line and
    otherwise ignored, so the rest of the file is still checked; any other violation stops it.

    A misspelt required field gives one report (the unknown field, with a suggestion), not a
    second one for the field it was meant to be.
    """
    validator = Draft202012Validator(schema)
    errors = list(validator.iter_errors(document))
    unknown: dict[tuple[Any, ...], list[str]] = {}
    for error in errors:
        if error.validator == "additionalProperties" and error.validator_value is False:
            known = error.schema.get("properties", {})
            unknown.setdefault(tuple(error.absolute_path), []).extend(
                str(k) for k in error.instance if k not in known)
    problems = []
    usable = True
    for error in errors:
        where = list(error.absolute_path)
        location = "/".join(str(p) for p in where) or "(top)"
        if error.validator == "additionalProperties" and error.validator_value is False:
            known = list(error.schema.get("properties", {}))
            for key in unknown.get(tuple(where), []):
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(RuleProblem(path, line_of(document, [*where, key]), "SCHEMA",
                                            f"{location}: unknown field {key!r}{hint}"))
            continue
        usable = False
        if error.validator == "required":
            missing = re.match(r"'([^']+)' is a required property", error.message)
            extras = unknown.get(tuple(where), [])
            if missing and difflib.get_close_matches(missing.group(1), extras, n=1):
                continue  # reported as the misspelt unknown field
        problems.append(RuleProblem(path, line_of(document, where), "SCHEMA", f"{location}: {error.message}"))
    return problems, usable
