"""The chat layer: tokenizer loading (safe pad), rendering conversations with the model's chat template,
assistant-only label masks, and the tokens that end a turn. Train, evaluate, serve and `data preview`
build on it; it imports nothing from those stages.
"""
