"""Augmenting an export with the person's stated facts restated in the assistant's voice (`export
--restate-facts`, `restate_facts: true` in `export.yaml`, `cycle` alike): `facts` finds the statements in the
person's redacted turns (the rules), `augment` generates the exchanges with the base model, checks them and
writes them into the train split with their lineage."""

from milton_lora.restate.augment import RestateSummary, export_then_restate, load_generator, restate_export
from milton_lora.restate.facts import RULES_VERSION, Statement, statements_in

__all__ = [
    "RULES_VERSION",
    "RestateSummary",
    "Statement",
    "export_then_restate",
    "load_generator",
    "restate_export",
    "statements_in",
]
