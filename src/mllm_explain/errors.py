"""The one exception type for bad user input: the CLI prints its message on one line and exits 2."""


class UserError(Exception):
    """Input the user can fix (a missing image, an unknown method, ...); never a bug."""
