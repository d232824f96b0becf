"""The one base of the errors a user can fix (bad input, missing data, an environment not set up).

Every command runs through ``cli.common.run_command``: a :class:`UserError` becomes one line on stderr,

    PROG: error: <what> (<file>); <hint>

and exit status 2; anything else is a bug in this package and keeps its traceback (exit status 1). So raise a
``UserError`` (or a subclass) only for conditions the user can fix, and never turn other exceptions into one
broadly: a ``RuntimeError`` from torch or a ``KeyError`` from our own code must stay visible.
"""

from __future__ import annotations

import os


class UserError(Exception):
    """A condition the user can fix.

    Args:
        what: what is wrong, one sentence without the file (e.g. ``"no plans for dataset 990"``).
        file: the file or folder concerned, shown in parentheses after ``what``; None if there is none.
        hint: the next step, if there is one (e.g. ``"run nnInteractive_plan_and_preprocess -d 990 first"``).
    """

    exit_at_once: bool = False
    """True where the process must end right after the error line, without the interpreter's teardown
    (:func:`exit_at_once`): a lost rank (``training.loop.LostRankError``)."""

    def __init__(self, what: str, file: str | os.PathLike | None = None, hint: str | None = None):
        self.what = str(what)
        self.file = None if file is None else str(file)
        self.hint = hint
        super().__init__(self.what, self.file, self.hint)  # args: picklable across process pools

    def __str__(self) -> str:
        text = self.what if self.file is None else f"{self.what} ({self.file})"
        return text if self.hint is None else f"{text}; {self.hint}"


class UsageError(UserError):
    """The command line itself is wrong (unknown option, missing argument, bad value)."""


class SetupError(UserError):
    """The environment or the inputs are not ready for the requested command (a variable unset, a dataset,
    plans, preprocessed data or a run folder missing)."""


class CaseError(UserError):
    """One bad case: a data file that is missing, unreadable or inconsistent.

    ``str()`` is ``"<file>: <problem>"`` (as listed in a collection's skipped-cases file and an evaluation
    summary); the command line shows ``<problem> (<file>)`` like every other error.
    """

    def __init__(self, file: str | os.PathLike | None, problem: str, hint: str | None = None):
        super().__init__(problem, file, hint)
        self.problem = self.what
        self.args = (file, problem, hint)

    def __str__(self) -> str:
        return self.what if self.file is None else f"{self.file}: {self.what}"


def exit_at_once(status: int) -> None:
    """End the process with ``status`` now: flush stdout and stderr, then ``os._exit`` without the interpreter's
    teardown (atexit handlers, C++ static destructors). For errors after which that teardown is unsafe, such as
    a lost rank (``training.loop.LostRankError``); the caller has already released what it owns."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more can be said anyway
            pass
    os._exit(status)


def format_error(prog: str, error: UserError) -> str:
    """The one-line message of ``error`` (further lines of a multi-line ``what`` follow, indented)."""
    first, *rest = error.what.splitlines() or [""]
    line = f"{prog}: error: {first}"
    if error.file is not None:
        line += f" ({error.file})"
    if error.hint:
        line += f"; {error.hint}"
    return "\n".join([line, *(f"  {r}" for r in rest)])
