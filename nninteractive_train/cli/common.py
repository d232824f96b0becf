"""What every command shares: the argument parser, the error runner, and the ``-d`` dataset argument.

    def main(argv=None) -> int:
        return run_command(build_parser(), _run, argv)

``run_command`` turns a :class:`~nninteractive_train.errors.UserError` (including a bad command line) into one
line, ``PROG: error: <what> (<file>); <hint>``, and exit status 2. It catches nothing else: an unexpected
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from nninteractive_train.errors import UsageError, UserError, exit_at_once, format_error


class Parser(argparse.ArgumentParser):
    """``argparse`` whose errors are :class:`UsageError` (one line, like every other error) instead of a usage
    block followed by a second format."""

    def error(self, message: str):  # noqa: D102 - argparse's hook
        raise UsageError(message, hint=f"see {self.prog} --help")


def run_command(parser: argparse.ArgumentParser, body: Callable[[argparse.Namespace], int | None],
                argv: list[str] | None = None) -> int:
    """Parse ``argv`` with ``parser`` and run ``body(args)``.

    Returns ``body``'s exit status (None → 0). A :class:`UserError` prints its one line to stderr and raises
    ``SystemExit(2)`` (as argparse does), so both the console script and a caller of ``main()`` stop there.
    """
    try:
        args = parser.parse_args(argv)
        _resolve_processes(args)
        status = body(args)
    except UserError as e:
        print(format_error(parser.prog, e), file=sys.stderr)
        if e.exit_at_once:  # a lost rank: no interpreter teardown (training/loop.py)
            exit_at_once(2)
        raise SystemExit(2) from None
    return 0 if status is None else int(status)


def dataset_ref(text: str) -> int | str:
    """argparse type of ``-d``: an id (``990`` → 990) or a dataset name (``Dataset990_Synthetic``), as nnU-Net's
    commands take them."""
    text = str(text).strip()
    if text.isdigit():
        return int(text)
    if text.startswith("Dataset") and text[7:10].isdigit() and text[10:11] == "_" and len(text) > 11:
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is neither a dataset id (990) nor a dataset name "
                                     f"(Dataset990_Synthetic)")


def add_dataset_argument(parser: argparse.ArgumentParser, help: str, *, required: bool = True,
                         nargs: str | None = None, aliases: tuple[str, ...] = ()) -> None:
    """``-d/--dataset-id`` (id or name) into ``dest="dataset_id"``; ``aliases`` are older spellings that keep
    working but are not shown in ``--help``."""
    parser.add_argument("-d", "--dataset-id", dest="dataset_id", type=dataset_ref, required=required and not aliases,
                        nargs=nargs, metavar="ID_OR_NAME", help=f"{help} (id, e.g. 990, or name, e.g. "
                                                                f"Dataset990_Synthetic)")
    for alias in aliases:
        parser.add_argument(alias, dest="dataset_id", type=dataset_ref, nargs=nargs, help=argparse.SUPPRESS)


def require_dataset(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The check ``required=True`` cannot make when hidden aliases share the destination."""
    if getattr(args, "dataset_id", None) is None:
        parser.error("the following arguments are required: -d/--dataset-id")


def add_processes_argument(parser: argparse.ArgumentParser, fallback: int, what: str) -> None:
    """``-np/--num-processes``; its default (``nnUNet_def_n_proc`` if set, nnU-Net's default process count, else
    ``fallback``) is resolved by ``run_command`` so that a bad value is an error line, not a traceback."""
    parser.add_argument("-np", "--num-processes", type=int, default=None,
                        help=f"{what} (default: $nnUNet_def_n_proc, else {fallback})")
    parser.set_defaults(_processes_fallback=fallback)


def _resolve_processes(args: argparse.Namespace) -> None:
    fallback = getattr(args, "_processes_fallback", None)
    if fallback is not None:
        from nninteractive_train.nnunet_env import default_num_processes

        if args.num_processes is None:
            args.num_processes = default_num_processes(fallback)
        del args._processes_fallback
