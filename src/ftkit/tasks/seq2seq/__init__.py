"""The encoder-decoder family (T5, BART, ...): span-corruption pre-training (span_corruption.py, span_section.py).

Modules are imported by the registry by name (each exports its `SPEC`); the recipe schema imports the sections,
which are torch-free, so nothing is imported here."""
