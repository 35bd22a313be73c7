"""Configuration from the environment for every command-line option, and help that shows every
default (12-factor): `--max-connection-age` of `cptrules serve` is also `CPTRULES_MAX_CONNECTION_AGE`.

One mechanism for all commands, applied to the parser as built, so an option added to any
subcommand gets its variable with no further code. A flag on the command line beats the variable,
which beats the built-in default. A variable's value is checked like the flag's (type, choices);
a switch takes 1/true/yes/on or 0/false/no/off.
"""

from __future__ import annotations

import argparse
import copy
import os
import shlex
from collections.abc import Iterator, Mapping

PREFIX = "CPTRULES_"
# Variables the program reads itself, naming them in its messages (data/location.py).
READ_ELSEWHERE = frozenset({"CPTRULES_DATA_DIR"})
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_name(action: argparse.Action) -> str | None:
    """CPTRULES_<LONG_FLAG> for an option with a long flag; None for positionals and --help."""
    longs = [o for o in action.option_strings if o.startswith("--")]
    if not longs or isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
        return None
    return PREFIX + longs[0][2:].upper().replace("-", "_")


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default and its environment variable."""

    _NO_HELP = "\0"

    def _format_action(self, action: argparse.Action) -> str:
        if action.option_strings and not action.help:  # an option without help still shows both
            action = copy.copy(action)
            action.help = self._NO_HELP
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = (action.help or "").replace(self._NO_HELP, "")
        if action.help == argparse.SUPPRESS:
            return text
        if action.option_strings and "%(default)" not in text and action.default is not argparse.SUPPRESS \
                and not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
                text += " (default: off)" if action.default is False else " (default: on)"
            elif action.default is not None:
                text += " (default: %(default)s)" if text else "default: %(default)s"
        name = env_name(action)
        if name:
            text += f" [env {name}]"
        return text


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose subcommands (created with add_parser) share its help format and,
    once `apply_environment` has run, read their options' variables when they parse: only the
    command being run reads them, so a variable meant for one command never trips another."""

    environ: Mapping[str, str] | None = None

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def]
        if self.environ is not None:
            _defaults_from(self, self.environ)
        return super().parse_known_args(args, namespace)


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases share one parser
                yield from _parsers(sub)


def _convert(parser: argparse.ArgumentParser, action: argparse.Action, name: str, text: str) -> object:
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        word = text.strip().lower()
        if word not in _TRUE | _FALSE:
            parser.error(f"{name}={text!r}: expected 1/true/yes/on or 0/false/no/off")
        on = word in _TRUE
        return on if isinstance(action, argparse._StoreTrueAction) else not on
    if isinstance(action, argparse._CountAction):
        return int(text) if text.strip().isdigit() else parser.error(f"{name}={text!r}: expected a count")
    many = action.nargs in ("*", "+") or isinstance(action.nargs, int) or isinstance(
        action, (argparse._AppendAction, argparse._ExtendAction))
    items = shlex.split(text) if many else [text]
    values = []
    for item in items:
        try:
            value = parser._get_value(action, item)
        except argparse.ArgumentError as error:
            parser.error(f"{name}={text!r}: {error.message}")
        if action.choices is not None and value not in action.choices:
            parser.error(f"{name}={text!r}: choose from {', '.join(map(str, action.choices))}")
        values.append(value)
    return values if many else values[0]


def _defaults_from(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Make each of the parser's own options' CPTRULES_* variable, when set, its default."""
    for action in parser._actions:
        name = env_name(action)
        if name is None or name not in environ or name in READ_ELSEWHERE or action.help == argparse.SUPPRESS:
            continue
        action.default = _convert(parser, action, name, environ[name])
        action.required = False


def apply_environment(parser: argparse.ArgumentParser, environ: Mapping[str, str] | None = None) -> None:
    """From now on, each option's CPTRULES_* variable, when set, is its default (and satisfies
    `required`); checked when the command it belongs to parses its arguments."""
    environ = os.environ if environ is None else environ
    for each in _parsers(parser):
        if isinstance(each, Parser):
            each.environ = environ
        else:
            _defaults_from(each, environ)
