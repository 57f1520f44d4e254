"""Settings declared once: each is a field of a frozen dataclass whose metadata holds its meaning, its
parser and how it is written back as text. From that one declaration follow the flag (`--name-with-dashes`),
the environment variable (PREFIX + NAME_UPPER_SNAKE), the precedence (flag > environment > default), the
error naming where a bad value came from, the environment a value renders to, and the README's table.

Both commands build on it (rolesanywhere_sidecar.settings, rolesanywhere_operator.settings); the operator
also renders the sidecar's settings to the env of the container it injects. Only the standard library is
imported: the sidecar's `check` probe imports this on every run.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class SettingsError(ValueError):
    """A setting has a bad value or a required one is missing; the message names the flag and env var."""


def _text_of(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


@dataclass(frozen=True)
class About:
    """What the declaration of one setting says besides its name and default."""

    meaning: str
    parse: Callable[[str], Any]
    #: Commands that read it; empty for a program without subcommands (every setting is read).
    used_by: tuple[str, ...] = ()
    #: A flag that takes no value (present: true); its environment variable still takes true or false.
    switch: bool = False
    required: bool = False
    #: The default as the reference shows it, when str(default) would not say it well (e.g. a file mode).
    shown_default: str | None = None
    #: The text `parse` reads back to the same value (round trip).
    render: Callable[[Any], str] = _text_of


def setting(default: Any, meaning: str, parse: Callable[[str], Any], **about: Any) -> Any:
    """Declare one setting: its default, a one-line meaning, how to parse its text (and `About`'s options)."""
    return dataclasses.field(default=default, metadata={"about": About(meaning, parse, **about)})


def about_of(f: dataclasses.Field[Any]) -> About:
    return f.metadata["about"]  # type: ignore[no-any-return]


class Declaration(Generic[T]):
    """The settings of one program: a frozen dataclass of `setting(...)` fields and an environment prefix."""

    def __init__(self, settings_class: type[T], env_prefix: str) -> None:
        self.settings_class = settings_class
        self.env_prefix = env_prefix
        self.fields: tuple[dataclasses.Field[Any], ...] = dataclasses.fields(settings_class)  # type: ignore[arg-type]

    def field(self, name: str) -> dataclasses.Field[Any]:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def flag(self, name: str) -> str:
        return "--" + name.replace("_", "-")

    def env(self, name: str) -> str:
        return self.env_prefix + name.upper()

    def _read_by(self, f: dataclasses.Field[Any], command: str | None) -> bool:
        used_by = about_of(f).used_by
        return command is None or not used_by or command in used_by

    def shown_default(self, f: dataclasses.Field[Any]) -> str:
        about = about_of(f)
        if about.shown_default is not None:
            return about.shown_default
        return "" if f.default is None else about.render(f.default)

    def add_arguments(self, parser: argparse.ArgumentParser, command: str | None = None) -> None:
        """One flag per setting `command` reads; unset flags stay absent so the environment and defaults apply."""
        for f in self.fields:
            if not self._read_by(f, command):
                continue
            about, default = about_of(f), self.shown_default(f)
            help_text = f"{about.meaning} [env {self.env(f.name)}" + (f"; default {default}]" if default else "]")
            help_text = help_text.replace("%", "%%")  # argparse expands %-placeholders in help
            if about.switch:
                parser.add_argument(self.flag(f.name), dest=f.name, action="store_true",
                                    default=argparse.SUPPRESS, help=help_text)
            else:
                parser.add_argument(self.flag(f.name), dest=f.name, metavar=f.name.upper(),
                                    default=argparse.SUPPRESS, help=help_text)

    def resolve(self, flags: Mapping[str, object], environ: Mapping[str, str], command: str | None = None) -> T:
        """Settings from parsed flags, the environment and the defaults; SettingsError names the source."""
        values: dict[str, object] = {}
        for f in self.fields:
            if not self._read_by(f, command):
                continue
            about = about_of(f)
            if f.name in flags:
                raw, source = flags[f.name], self.flag(f.name)
                if isinstance(raw, bool):  # a switch given on the command line
                    values[f.name] = raw
                    continue
            elif self.env(f.name) in environ:
                raw, source = environ[self.env(f.name)], self.env(f.name)
            else:
                if about.required:
                    raise SettingsError(f"missing {self.flag(f.name)} (or {self.env(f.name)}): {about.meaning}")
                continue
            try:
                values[f.name] = about.parse(str(raw))
            except ValueError as error:
                raise SettingsError(f"bad {source}: {error}") from None
        return self.settings_class(**values)

    def render_env(self, settings: T, *, command: str | None = None, always: Iterable[str] = ()) -> dict[str, str]:
        """The environment that `resolve` reads back as `settings`: every value other than its default (and
        those named in `always`, so they hold even where another version has other defaults)."""
        kept = set(always)
        env: dict[str, str] = {}
        for f in self.fields:
            value = getattr(settings, f.name)
            if not self._read_by(f, command) or value is None or (value == f.default and f.name not in kept):
                continue
            env[self.env(f.name)] = about_of(f).render(value)
        return env

    def reference_markdown(self) -> str:
        """The settings table a README carries: flag, environment variable, default, meaning (and commands)."""
        by_command = any(about_of(f).used_by for f in self.fields)
        header = ["Flag", "Environment variable", "Default", "Meaning", *(["Used by"] if by_command else [])]
        rows = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        for f in self.fields:
            about, default = about_of(f), self.shown_default(f)
            cells = [f"`{self.flag(f.name)}`", f"`{self.env(f.name)}`", f"`{default}`" if default else "",
                     about.meaning + (" (required)" if about.required else "")]
            if by_command:
                cells.append(", ".join(about.used_by))
            rows.append("| " + " | ".join(cells) + " |")
        return "\n".join(rows) + "\n"


# --- Parsers shared by both programs: each takes the text and returns the value or raises ValueError ---


def text(value: str) -> str:
    if not value.strip():
        raise ValueError("expected a non-empty string")
    return value.strip()


def optional_text(value: str) -> str | None:
    return value.strip() or None


def path(value: str) -> Path:
    if not value:
        raise ValueError("expected a file path, got an empty string")
    return Path(value)


def switch(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def choice(*choices: str) -> Callable[[str], str]:
    """One of `choices`, matched without regard to case and returned as declared."""
    by_lower = {c.lower(): c for c in choices}

    def parse(value: str) -> str:
        try:
            return by_lower[value.strip().lower()]
        except KeyError:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}") from None

    return parse


def integer(low: int, high: int) -> Callable[[str], int]:
    """A whole number from `low` to `high`."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"expected an integer from {low} to {high}, got {value!r}") from None
        if not low <= number <= high:
            raise ValueError(f"expected an integer from {low} to {high}, got {number}")
        return number

    return parse


#: A TCP port (0: the system picks a free one).
port = integer(0, 65535)


def seconds(value: str) -> float:
    """A positive number of seconds."""
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"expected a number of seconds, got {value!r}") from None
    if not number > 0:
        raise ValueError(f"expected a positive number of seconds, got {number}")
    return number


def fraction(value: str) -> float:
    """A number strictly between 0 and 1."""
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"expected a number between 0 and 1 (exclusive), got {value!r}") from None
    if not 0 < number < 1:
        raise ValueError(f"expected a number between 0 and 1 (exclusive), got {number}")
    return number
