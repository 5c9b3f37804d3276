"""Milton LoRA: turn your own assistant conversations into a personal LoRA adapter, safely."""

__version__ = "0.1.0"
