"""Errors that mean "the user asked for something wrong": printed without traceback, exit 2."""


class UserError(Exception):
    """A problem with what the user asked for (a flag, a file, a name)."""


def one_line(err: Exception, limit: int = 300) -> str:
    """A library's multi-line message (PyYAML's marks, say) as one line for a CLI error."""
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[:limit] + " ..."
