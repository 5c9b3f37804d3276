"""The documented command line, the same as `milton-lora export ARGS`."""

from milton_lora.cli import run_script

run_script("export")
