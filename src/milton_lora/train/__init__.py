"""Training: YAML config → safety checks → LoRA adapter under adapters/<run_id>/ with logs under runs/<run_id>/."""
