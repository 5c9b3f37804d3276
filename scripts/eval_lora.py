"""The documented command line, the same as `milton-lora eval ARGS`."""

from milton_lora.cli import run_script

run_script("eval")
