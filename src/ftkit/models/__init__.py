"""Models: build from a Transformers config, or load from a local directory / hub id."""
