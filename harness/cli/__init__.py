"""The command line: the click group (``main``), shared options, one module per command family.

Exit codes are part of the public API: 0 success, 1 the card refused, 2 bad input, 3 no reader,
no card or no PC/SC service.
"""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    REFUSED = 1  # the card said no: wrong code, blocked; or a scenario/replay/check that differs
    INPUT = 2  # bad input: usage, a file or a value that cannot be used
    NO_CARD = 3  # no reader, no card, no PC/SC service
