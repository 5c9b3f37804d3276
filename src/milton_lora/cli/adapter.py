"""`milton-lora adapter export`: an adapter for llama.cpp and Ollama (GGUF LoRA), or merged into its base."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from milton_lora.cli.app import adapter_app
from milton_lora.cli.common import console, print_warning, registry_of, settings_of
from milton_lora.errors import MiltonError


@adapter_app.command("export")
def adapter_export(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The adapter: a run id, latest, latest-candidate or production.")],
    fmt: Annotated[
        str, typer.Option("--format", help="gguf (llama.cpp), ollama (folder with a Modelfile) or merged (HF folder).")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", help="File (gguf) or folder to write (default: exports/<run_id>/...).")
    ] = None,
    outtype: Annotated[str, typer.Option("--outtype", help="GGUF tensor type: f16, f32 or q8_0.")] = "f16",
    ollama_base: Annotated[
        str | None,
        typer.Option("--ollama-base", help="Ollama: FROM, an Ollama model name or a GGUF of the same base weights."),
    ] = None,
    system: Annotated[str | None, typer.Option("--system", help="Ollama: a system prompt (SYSTEM).")] = None,
    base_model: Annotated[
        Path | None, typer.Option("--base-model", help="Base model folder (default: the one training recorded).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an earlier export at the same place.")] = False,
) -> None:
    """Export an adapter for llama.cpp (GGUF LoRA), Ollama (Modelfile folder) or engines without LoRA (merged)."""
    from milton_lora.adapters.commands import commands_for
    from milton_lora.adapters.exports import FORMATS, ExportRequest, export_adapter
    from milton_lora.adapters.lora_gguf import OUT_TYPES
    from milton_lora.settings import default_cache_dir

    if fmt not in FORMATS:
        raise MiltonError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    if outtype not in OUT_TYPES:
        raise MiltonError(f"--outtype {outtype}: choose one of {', '.join(OUT_TYPES)}")
    if fmt != "ollama" and (ollama_base or system is not None):
        raise MiltonError("--ollama-base and --system go with --format ollama")
    settings = settings_of(ctx)
    registry = registry_of(settings)
    request = ExportRequest(registry.resolve(run_id), fmt, out, outtype, ollama_base, system, base_model, force)  # type: ignore[arg-type]
    with console.status(f"exporting {request.run_id} as {fmt}..."):
        result = export_adapter(settings, registry, request, default_cache_dir())
    console.print(f"Exported {request.run_id} as {fmt}: {result.path}", highlight=False, markup=False)
    for label, value in (
        ("sha256", result.record.sha256),
        ("runs on", result.record.base),
        *(("note", n) for n in result.notes),
    ):
        if value:
            console.print(f"  {label}: {value}", highlight=False, markup=False)
    if not result.recorded:
        print_warning(f"{request.run_id} is not in the registry; this export is not recorded there")
    for line in commands_for(result.record, result.path):
        console.print(line, highlight=False, markup=False)
