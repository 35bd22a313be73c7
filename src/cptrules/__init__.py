"""cptrules: deterministic answers about US medical billing codes from declarative rules."""

from .engine import AnswerResult, CodeReport, Engine, Outcome
from .errors import (CodeNotFoundError, CptrulesError, DataImportError, InvalidInputError,
                     MalformedCodeError, QuestionTooLongError, RuleFileErrors)

__all__ = [
    "AnswerResult", "CodeNotFoundError", "CodeReport", "CptrulesError", "DataImportError",
    "Engine", "InvalidInputError", "MalformedCodeError", "Outcome", "QuestionTooLongError",
    "RuleFileErrors",
]
