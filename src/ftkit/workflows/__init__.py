"""One module per command: each composes data, models and tasks and hands them to the engine."""
