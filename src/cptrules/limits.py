"""Input bounds, in one place; the proto comments document the same numbers."""

QUESTION_MAX_CHARS = 1000
BATCH_MAX_CODES = 100
PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 1000
CODE_MAX_CHARS = 64
ANSWER_MAX_CODES = 3
