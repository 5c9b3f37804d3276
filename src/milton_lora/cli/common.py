"""What every command module shares: the consoles, the root callback's settings, two-column tables,
warnings, the confirmation question, and opening the registry, serve config, redaction terms and export
options of a home.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

import typer
from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

from milton_lora.config import load_model
from milton_lora.errors import MiltonError
from milton_lora.settings import Settings

if TYPE_CHECKING:
    from milton_lora.config import ServeConfig
    from milton_lora.export import ExportOptions
    from milton_lora.redact import Redactor
    from milton_lora.registry import Registry

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def settings_of(ctx: typer.Context) -> Settings:
    return ctx.find_root().obj


def print_rows(
    title: str, rows: Iterable[tuple[str, object]], value_header: str = "value", justify: JustifyMethod = "left"
) -> None:
    """The two-column table most commands print: what, and its value (as plain text, never markup)."""
    table = Table(title=title)
    table.add_column("what")
    table.add_column(value_header, justify=justify)
    for name, value in rows:
        table.add_row(name, Text(str(value)))
    console.print(table)


def print_warning(message: str) -> None:
    err_console.print(Text("warning: ", style="bold yellow") + Text(message))


def registry_of(settings: Settings) -> Registry:
    from milton_lora.registry import Registry

    return Registry.of(settings)


def serve_config_of(settings: Settings) -> ServeConfig:
    from milton_lora.config import ServeConfig

    return load_model(settings.serve_config_path, ServeConfig, defaults_if_missing=True)


def export_options_of(settings: Settings) -> ExportOptions:
    """The home's `export.yaml` (optional) as the export's options."""
    from milton_lora.config import ExportConfig
    from milton_lora.export import ExportOptions

    config = load_model(settings.export_config_path, ExportConfig, defaults_if_missing=True)
    return ExportOptions(**config.model_dump())


def redactor_of(settings: Settings) -> Redactor:
    """The redaction engine with the home's own terms (`redact.yaml`, optional) applied."""
    from milton_lora.redact.config import load_redactor

    return load_redactor(settings.redact_terms_path)


def confirm_or_abort(force: bool) -> None:
    """Ask `Proceed? [y/N]:`; anything but y/yes aborts. Without a terminal, only --force proceeds."""
    if force:
        console.print("--force: proceeding without asking.")
        return
    if not sys.stdin.isatty():
        raise MiltonError("no terminal to confirm on; re-run interactively or pass --force")
    answer = console.input("Proceed? [y/N]: ", markup=False).strip().lower()
    if answer not in ("y", "yes"):
        raise MiltonError("aborted; nothing changed")
