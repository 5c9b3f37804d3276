"""The `milton-lora` command line: one module per command group, each command a thin parse → call one
public function → print. User mistakes raise `MiltonError` anywhere below; `main()` prints them on one
line and exits 1.
"""

from __future__ import annotations

import contextlib
import signal
import sys

import typer
from rich.text import Text

from milton_lora.cli import (  # noqa: F401  (registers commands)
    adapter,
    base,
    cycle,
    data,
    evaluate,
    export,
    home,
    memory,
    registry,
    serve,
    tools,
    train,
    ui,
)
from milton_lora.cli.app import app
from milton_lora.cli.common import err_console
from milton_lora.errors import MiltonError, fault_message
from milton_lora.fileio import private_umask

try:  # recent typer vendors its own click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer uses click itself
    from click.exceptions import ClickException


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user mistakes become one red line on stderr and exit status 1, never a traceback."""
    # A file size limit then fails the write (EFBIG, reported below) instead of killing the process.
    with contextlib.suppress(ValueError):  # only the main thread may set it (an embedding caller may not be)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    private_umask()  # the home holds private text: whatever this run creates is owner-only
    try:
        result = app(args=argv, prog_name="milton-lora", standalone_mode=False)
    except MiltonError as exc:
        _print_error(str(exc))
        sys.exit(exc.exit_code)
    except ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("Aborted.")
        sys.exit(130)
    except Exception as exc:
        message = fault_message(exc)
        if message is None:
            raise
        _print_error(message)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


def _print_error(message: str) -> None:
    err_console.print(Text("error: ", style="bold red") + Text(message))


def run_script(command: str) -> None:
    """Entry for the documented `scripts/*.py`: the same CLI with the sub-command filled in."""
    main([command, *sys.argv[1:]])
