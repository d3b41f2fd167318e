"""The one exception type users see: a clear, one-line reason why an input cannot be analysed."""


class InputError(Exception):
    """An input file cannot be analysed (missing, corrupt, unmerged, no usable columns, ...).

    The message is a single line meant for the user; the CLI prints it without a traceback.
    """
