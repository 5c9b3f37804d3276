"""The one exception type for user mistakes: the CLI prints its message on one line and exits non-zero."""


class MiltonError(Exception):
    """A problem the user can fix (bad input, missing file, refused transition).

    The message must name the file, line or key at fault and say what to do.
    """

    exit_code = 1
