"""The machine-learning libraries as this tool uses them: quiet (our own progress and summaries replace
their bars and chatter) and their versions (recorded in every adapter's metadata).
"""

from __future__ import annotations

import platform
import warnings

from milton_lora import __version__


def quiet_libraries() -> None:
    """Our progress bar and summary replace the libraries' bars and deprecation chatter."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    # transformers 5.x renamed gradient_checkpointing; the old name works across the supported range.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")


def library_versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ("torch", "transformers", "peft", "trl", "accelerate", "datasets")
    return {"python": platform.python_version(), "milton_lora": __version__, **{n: version(n) for n in names}}
