"""The exception tree of cptrules; the transport maps each class to a status.

CptrulesError
 ├── InvalidInputError          bad request content (INVALID_ARGUMENT)
 │    ├── MalformedCodeError    a code that matches no code format
 │    └── QuestionTooLongError  a question over the documented limit
 ├── CodeNotFoundError          well-formed, but no loaded source knows it (NOT_FOUND)
 ├── RuleFileErrors             one or more rule-file problems, each with file:line (FAILED_PRECONDITION)
 ├── RuleEvaluationError        a rule failed while evaluating (FAILED_PRECONDITION)
 │    └── TemplateRenderError   an answer template failed while rendering
 │         └── TemplateBudgetError  ... because it went past its cost limits
 ├── ZipNeedsPlusFourError      a ZIP code that spans localities (FAILED_PRECONDITION)
 ├── DataImportError            a data file was refused, with line and column (FAILED_PRECONDITION)
 └── DataFileError              a stored data file or data directory cannot be loaded
"""

from __future__ import annotations

from dataclasses import dataclass


class CptrulesError(Exception):
    """Base class: carries a machine-readable reason and metadata for ErrorInfo."""

    reason = "CPTRULES_ERROR"

    def __init__(self, message: str, metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.metadata = dict(metadata or {})


class InvalidInputError(CptrulesError):
    """The request itself is wrong; `field` names the offending request field."""

    reason = "INVALID_INPUT"

    def __init__(self, message: str, field: str, metadata: dict[str, str] | None = None,
                 reason: str | None = None) -> None:
        super().__init__(message, metadata)
        self.field = field
        if reason:
            self.reason = reason


class MalformedCodeError(InvalidInputError):
    """The text is not in any code format the category rules know."""

    reason = "MALFORMED_CODE"

    def __init__(self, code: str, field: str = "code") -> None:
        super().__init__(
            f"{code!r} is not a CPT or HCPCS code: codes are five characters, such as "
            "99213 or 0001A (Category I), 1036F (Category II), 0556T (Category III), "
            "0001U (PLA), 0002M (MAAA) or G0439 (HCPCS Level II)",
            field,
            {"code": code},
        )
        self.code = code


class QuestionTooLongError(InvalidInputError):
    """A question longer than the documented limit."""

    reason = "QUESTION_TOO_LONG"

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(
            f"the question is {length} characters long; the limit is {limit}",
            "question",
            {"length": str(length), "limit": str(limit)},
        )


class CodeNotFoundError(CptrulesError):
    """A well-formed code that none of the loaded sources lists."""

    reason = "CODE_NOT_FOUND"

    def __init__(self, code: str, category_label: str, sources: list[str]) -> None:
        super().__init__(
            f"{code} has the {category_label} format, but none of the loaded sources "
            f"({', '.join(sources)}) lists it",
            {"code": code, "category": category_label, "sources": ",".join(sources)},
        )
        self.code = code


@dataclass(frozen=True, slots=True)
class RuleProblem:
    """One problem in a rule, template or phrasing file, located to a line."""

    path: str
    line: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}: {self.message}"


class RuleFileErrors(CptrulesError):
    """Every problem found while loading a ruleset, sorted by location."""

    reason = "RULESET_INVALID"

    def __init__(self, problems: list[RuleProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.path, p.line, p.kind, p.message))
        first = self.problems[0] if self.problems else None
        super().__init__(
            f"{len(self.problems)} problem(s) in the rules; first: {first}",
            {"problems": str(len(self.problems)), "first": str(first)},
        )

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class RuleEvaluationError(CptrulesError):
    """A rule's expression failed at evaluation (e.g. a bad date handed to a function)."""

    reason = "RULE_EVALUATION_FAILED"

    def __init__(self, rule_id: str, path: str, line: int, detail: str, code: str) -> None:
        super().__init__(
            f"{path}:{line}: rule {rule_id} failed for {code}: {detail}",
            {"rule_id": rule_id, "file": path, "line": str(line), "code": code},
        )


class TemplateRenderError(RuleEvaluationError):
    """An answer template failed for one code's facts (a sandbox refusal, a filter error):
    that request fails alone, naming the template file and line."""

    reason = "TEMPLATE_RENDER_FAILED"

    def __init__(self, path: str, line: int, detail: str, code: str) -> None:
        CptrulesError.__init__(
            self, f"{path}:{line}: template failed for {code}: {detail}",
            {"template": path, "file": path, "line": str(line), "code": code})
        self.path = path
        self.line = line
        self.detail = detail


class TemplateBudgetError(TemplateRenderError):
    """An answer template went past its cost limits (limits.TEMPLATE_*) and was stopped."""

    reason = "TEMPLATE_BUDGET_EXCEEDED"


@dataclass
class ImportProblem:
    """Where a data file went wrong."""

    line: int
    column: str
    message: str


class DataImportError(CptrulesError):
    """A data file that was refused; nothing already loaded was changed."""

    reason = "DATA_IMPORT_REFUSED"

    def __init__(self, path: str, problem: ImportProblem) -> None:
        where = f"{path}:{problem.line}" if problem.line else path
        if problem.column:
            where += f" (column {problem.column})"
        super().__init__(
            f"{where}: {problem.message}",
            {"file": path, "line": str(problem.line), "column": problem.column},
        )
        self.problem = problem
        self.path = path


class DataFileError(CptrulesError):
    """A stored data file (or data directory) that cannot be loaded: damaged, edited or misplaced."""

    reason = "DATA_FILE_INVALID"

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}", {"file": path})
        self.path = path
        self.problem = problem


class ZipNeedsPlusFourError(CptrulesError):
    """A ZIP code CMS prices by ZIP+4: which locality applies depends on the last four digits."""

    reason = "ZIP_NEEDS_PLUS_FOUR"

    def __init__(self, zip_code: str, candidates: list[str], field: str = "zip_code") -> None:
        super().__init__(
            f"ZIP {zip_code} spans more than one payment locality: CMS prices it by ZIP+4, and the "
            f"ZIP+4 file is not loaded. Name the locality instead; candidates: {', '.join(candidates)}",
            {"zip_code": zip_code, "candidates": ",".join(candidates), "field": field},
        )
        self.zip_code = zip_code
        self.candidates = candidates
        self.field = field
