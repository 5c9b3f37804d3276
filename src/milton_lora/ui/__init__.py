"""The local dashboard (`milton-lora ui`, or `serve` under /ui): `overview` gathers what the pipeline's files
say, `pages` renders it, `app` serves the pages and performs the actions through the CLI's own functions."""
