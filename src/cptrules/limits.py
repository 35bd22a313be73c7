"""Input bounds, in one place; the proto comments document the same numbers."""

QUESTION_MAX_CHARS = 1000
BATCH_MAX_CODES = 100
PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 1000
CODE_MAX_CHARS = 64
ANSWER_MAX_CODES = 3

# Answer templates (answers/sandbox.py): what one render may spend. The default
# templates use a few hundred steps and write under 2,000 characters.
TEMPLATE_MAX_STEPS = 100_000            # loop iterations, range items, calls and filter uses
TEMPLATE_MAX_VALUE_CHARS = 100_000      # the largest string or list one operation may build
TEMPLATE_MAX_PRODUCED_CHARS = 1_000_000  # text built or written by one render, all buffers together
TEMPLATE_MAX_OUTPUT_CHARS = 100_000     # the answer text itself
TEMPLATE_MAX_CALL_DEPTH = 32            # macros calling macros
TEMPLATE_MAX_INT_BITS = 1024            # integers built by * and **
