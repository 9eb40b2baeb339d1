"""The one exception type the CLI turns into a one-line message and exit code 2.

Everything a user can get wrong (a recipe key, a data file, a model path, an output
directory) raises `UserError`; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input from the user: printed as one line, exit code 2, no traceback."""

    exit_code = 2


class PartialFailure(Exception):
    """Some inputs could not be used, all the others were done (`ftkit predict` over a folder with a broken image):
    its line on stderr, exit code 3. Not 1: an uncaught exception (a bug, output cut short) exits 1, and a script
    must tell "every readable input answered" from that; not 2: that says nothing was done."""

    exit_code = 3


class NothingToDo(Exception):
    """The command has nothing to do (e.g. `--resume` on a finished run): one line, exit 0, nothing changed."""

    exit_code = 0


def require(condition: bool, message: str) -> None:
    if not condition:
        raise UserError(message)
