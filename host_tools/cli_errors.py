"""The one way the CLI reports an error the user can act on: `seismote: message`, an optional
`hint: ...` line, no traceback, and a meaningful exit status (2 bad input or port, 1 node failed)."""

import functools

import click

from .ports import UserError


class CommandError(click.ClickException):
    """Printed as `seismote: message` (and `hint: ...`), no traceback."""

    def __init__(self, message: str, hint: str | None = None, exit_code: int = 2):
        super().__init__(message)
        self.hint = hint
        self.exit_code = exit_code

    def show(self, file=None) -> None:
        click.echo("seismote: %s" % self.message, err=True)
        if self.hint:
            click.echo("hint: %s" % self.hint, err=True)


def user_errors(fn):
    """Turn the host tools' UserError (ports, transport, deploy, logs) raised in `fn` into CommandError."""

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except UserError as e:
            raise CommandError(e.message, e.hint, e.exit_code) from None

    return wrapper
