"""The documented command line, the same as `milton-lora promote ARGS`."""

from milton_lora.cli import run_script

run_script("promote")
