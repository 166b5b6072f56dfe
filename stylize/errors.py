"""The one exception type users see.

Every failure a user can cause (a missing file, a bad checkpoint, an unknown style)
raises :class:`StylizeError` with a one-line message; the CLI prints it and exits
non-zero instead of showing a traceback.
"""

import unicodedata


class StylizeError(Exception):
    """A user-facing error whose message is a single line that says what to do."""


class StylizeWarning(UserWarning):
    """Something the user should know that does not stop the work (a photo skipped)."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (torch's and others' can run to pages)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def printable(text: str) -> str:
    """``text`` safe to print as part of one line: control characters (newlines, terminal
    escape sequences) and line separators are shown escaped, as ``\\n`` or ``\\x1b``.

    Messages quote file names and file contents, which anyone can choose; printed raw
    they could fake an ``error:`` line or clear the terminal.
    """
    return "".join(_escaped(c) if unprintable(c) else c for c in text)


def unprintable(character: str) -> bool:
    """Control, format, surrogate and unassigned characters, and line separators."""
    category = unicodedata.category(character)
    return category[0] == "C" or category in ("Zl", "Zp")


def _escaped(character: str) -> str:
    return repr(character)[1:-1] if character.isascii() else f"\\u{ord(character):04x}"


def one_line(exc: BaseException) -> str:
    """An exception's text squeezed onto one line (Pillow's sometimes span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def os_reason(exc: OSError) -> str:
    """The OS's short reason ("No space left on device") without errno noise."""
    return exc.strerror or one_line(exc)
