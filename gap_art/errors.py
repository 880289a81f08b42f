"""The one exception family of a caller's mistake: a setting, file or input that gap-art cannot
use, with a message naming the parameter and what is allowed.

The command line turns these (and only these) into a usage error (exit 2, one line); any other
exception is a bug in gap-art or a library and keeps its traceback. Both subclass the builtin a
Python caller expects (``ValueError``; ``TypeError`` for a value of the wrong kind), so
``except ValueError`` keeps working.
"""

from __future__ import annotations


class ParameterError(ValueError):
    """A parameter, setting or input is unknown, out of range or inconsistent; the message
    names it and what is allowed."""


class ParameterTypeError(ParameterError, TypeError):
    """A parameter is of the wrong kind (an object where an ART classifier is expected, say)."""
