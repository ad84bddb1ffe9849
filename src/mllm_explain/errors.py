"""The exceptions the command line turns into one line on stderr instead of a traceback."""


class UserError(Exception):
    """Input the user can fix (a missing image, an unknown method, ...); never a bug.  Exit code 2."""


class Interrupted(Exception):
    """The user stopped a run (Ctrl-C, exit code 130, or SIGTERM, 143); the message says what was kept."""
