"""The one exception type the CLI turns into a one-line error (no traceback)."""


class DeployBenchError(Exception):
    """A user-facing error: the message names the file/key and what to do."""
