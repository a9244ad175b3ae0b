"""Errors that mean "the user asked for something wrong": printed without traceback, exit 2."""


class UserError(Exception):
    """A problem with what the user asked for (a flag, a file, a name)."""
