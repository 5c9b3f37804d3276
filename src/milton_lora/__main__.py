"""`python -m milton_lora` runs the CLI."""

from milton_lora.cli import main

main()
