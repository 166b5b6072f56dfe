"""The one exception type users see.

Every failure a user can cause (a missing file, a bad checkpoint, an unknown style)
raises :class:`StylizeError` with a one-line message; the CLI prints it and exits
non-zero instead of showing a traceback.
"""


class StylizeError(Exception):
    """A user-facing error whose message is a single line that says what to do."""
