"""The one way the CLI reports an error the user can act on: `seismote: message`, an optional
`hint: ...` line, no traceback, and a meaningful exit status (2 bad input or port, 1 node failed)."""

import click


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
