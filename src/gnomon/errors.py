"""Errors a user can fix. The CLI prints them as one line and exits non-zero, never a traceback."""


class UserError(Exception):
    """Bad input from the user: a name, a path, a file or a row that cannot be used as given."""

    exit_code = 2
