"""The ``collabdnn`` console script.

Each subcommand lives in its own module under :mod:`collabdnn.cli` and exposes
``configure(parser)``, ``run(args) -> int`` and optionally ``LOG_LEVEL``; its one-line
help is in :data:`COMMANDS`, so the top-level ``--help`` imports none. Modules are
imported only when their subcommand is chosen, and must not import torch at module
level, so that thin clients (``classify``, ``health``, ``--help``) start fast.

Every option can also be set by an environment variable named after it:
``--cloud-port`` is ``COLLABDNN_CLOUD_PORT``. A flag on the command line wins. This is
how containers are configured (see docker-compose.yml).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from collabdnn import __version__
from collabdnn.errors import ConfigError

# name -> (module, one-line help). A mapping, so adding a command is one line.
COMMANDS: dict[str, tuple[str, str]] = {
    "models": ("collabdnn.cli.models", "list the models --model accepts (--units counts units)"),
    "summary": ("collabdnn.cli.summary", "print a model's unit table and parameter count"),
    "demo": ("collabdnn.cli.demo", "run the end-to-end demo on the sample photos"),
    "plan": ("collabdnn.cli.plan", "place each unit on mobile or cloud from saved profiles"),
    "profile": ("collabdnn.cli.profile", "measure or predict one side's per-unit profile"),
    "cloud": ("collabdnn.cli.cloud", "start the cloud server"),
    "mobile": ("collabdnn.cli.mobile", "start the mobile agent"),
    "scheduler": ("collabdnn.cli.scheduler", "start the scheduler (profiles, plans, pushes)"),
    "classify": ("collabdnn.cli.classify", "classify images through a mobile agent"),
    "train": ("collabdnn.cli.train", "train split between agent and cloud on an ImageFolder"),
    "health": ("collabdnn.cli.health", "check a service's gRPC health (exit 0 when SERVING)"),
    "link": ("collabdnn.cli.link", "shape the link with tc (set, clear, show); needs root"),
    "bench": ("collabdnn.cli.bench", "benchmark: the paper's experiment on shaped links"),
    "weights": ("collabdnn.cli.weights", "fetch a model's official weights into the torch cache"),
}


def _build_parser(command: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="collabdnn",
        description="Split DNN inference between a mobile agent and a cloud server.",
    )
    parser.add_argument("--version", action="version", version=f"collabdnn {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)"
    )
    apply_environment(parser)  # COLLABDNN_VERBOSE=2 is -vv
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            module.configure(sub_parser)
            apply_environment(sub_parser)
            sub_parser.set_defaults(
                _run=module.run, _log_level=getattr(module, "LOG_LEVEL", logging.WARNING)
            )
    return parser


ENV_PREFIX = "COLLABDNN_"
_TRUE = {"1", "true", "yes", "on"}


def env_name(dest: str) -> str:
    return ENV_PREFIX + dest.upper()


def apply_environment(
    parser: argparse.ArgumentParser, environ: dict[str, str] | None = None
) -> None:
    """Take each option's default from ``COLLABDNN_<OPTION>`` when that variable is set."""
    environ = dict(os.environ if environ is None else environ)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):  # e.g. link set|show|clear
            for child in action.choices.values():
                apply_environment(child, environ)
            continue
        if not action.option_strings or action.dest in {"help", "version"}:
            continue
        value = environ.get(env_name(action.dest))
        if value is None or value == "":
            continue
        try:
            action.default = _environment_value(action, value)
        except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
            # The same one-line error as a bad flag (exit status 2), naming the variable.
            detail = str(exc) if isinstance(exc, argparse.ArgumentTypeError) else "invalid value"
            parser.error(f"{env_name(action.dest)}={value!r}: {detail}")
        action.required = False
        if action.help and action.help is not argparse.SUPPRESS:
            action.help += f" [{env_name(action.dest)} is set]"


def _environment_value(action: argparse.Action, value: str) -> Any:
    if isinstance(action, argparse._StoreTrueAction):
        return value.lower() in _TRUE
    if isinstance(action, argparse._StoreFalseAction):
        return value.lower() not in _TRUE
    if isinstance(action, argparse._CountAction):
        return int(value)
    convert = _converter(action)
    if action.nargs in ("+", "*"):
        return [convert(v) for v in value.split()]
    return convert(value)


def _converter(action: argparse.Action) -> Callable[[str], Any]:
    """The callable argparse would apply to the option's text (``str`` when untyped)."""
    convert = action.type
    return convert if callable(convert) else str


def _chosen_command(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if arg in COMMANDS:
            return arg
        if not arg.startswith("-"):
            return None
    return None


def setup_logging(verbosity: int, default: int = logging.WARNING) -> None:
    """Log to stderr; services default to INFO, one-shot commands to WARNING."""
    logging.basicConfig(
        level=max(default - 10 * verbosity, logging.DEBUG),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser(_chosen_command(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    setup_logging(args.verbose, args._log_level)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except ConfigError as exc:  # a busy port, a bad certificate: one line, no traceback
        print(f"collabdnn {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
