"""`milton-lora data preview`: exported conversations rendered as the model will see them, trained tokens
highlighted, with trained/total token counts (`--json`: the same as segments)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.rule import Rule
from rich.text import Text

from milton_lora.cli.app import data_app
from milton_lora.cli.common import console, print_warning, settings_of
from milton_lora.errors import MiltonError

TRAINED_STYLE = "bold black on green"


@data_app.command("preview")
def preview(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", help="Training YAML: its base model, train_file and max_seq_length.")
    ] = None,
    base_model: Annotated[
        Path | None, typer.Option("--base-model", help="A model folder, instead of --config (no truncation).")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="Conversations JSONL (default: the config's train_file).")
    ] = None,
    count: Annotated[int, typer.Option("--n", help="How many conversations to show, from the start.")] = 3,
    as_json: Annotated[
        bool, typer.Option("--json", help='Print [[{"text": ..., "trained": true|false}, ...], ...].')
    ] = False,
) -> None:
    """Show conversations as the model will see them in training, trained tokens highlighted."""
    from milton_lora.chat.preview import preview_file

    model, default_file, max_length = _sources(ctx, config, base_model)
    result = preview_file(model, file.expanduser().resolve() if file else default_file, count, max_length)
    if as_json:
        segments = [[s.as_dict() for s in p.segments] for p in result.conversations]
        sys.stdout.write(json.dumps(segments, ensure_ascii=False, indent=1) + "\n")
        return
    for number, shown in enumerate(result.conversations, start=1):
        cut = ", cut at max_seq_length" if shown.truncated else ""
        counts = f"{shown.trained_tokens} of {shown.total_tokens} tokens trained{cut}"
        console.print(Rule(f"conversation {number}: {counts}"))
        console.print(Text.assemble(*((s.text, TRAINED_STYLE if s.trained else "dim") for s in shown.segments)))
    trained = sum(p.trained_tokens for p in result.conversations)
    total = sum(p.total_tokens for p in result.conversations)
    console.print(Rule())
    scope = f"{len(result.conversations)} of {result.total_conversations} conversations"
    console.print(Text.assemble(("highlighted", TRAINED_STYLE), f" = trained: {trained} of {total} tokens in {scope}"))
    for note in result.notes:
        print_warning(note)


def _sources(ctx: typer.Context, config: Path | None, base_model: Path | None) -> tuple[Path, Path, int | None]:
    """(model folder, default conversations file, max length) from --config or --base-model."""
    settings = settings_of(ctx)
    if (config is None) == (base_model is None):
        raise MiltonError("data preview: give either --config C (a training YAML) or --base-model DIR")
    if base_model is not None:
        return base_model.expanduser().resolve(), settings.export_train_path, None
    from milton_lora.config import TrainConfig, load_model
    from milton_lora.train.checks import resolve_config_path, train_and_test_files

    train_config = load_model(resolve_config_path(settings, config), TrainConfig)
    train_file, _ = train_and_test_files(settings, train_config)
    return settings.resolve(train_config.base_model_path), train_file, train_config.max_seq_length
