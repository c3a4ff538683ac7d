"""saescope: SAE embeddings of text corpora and cheap analyses over them."""

__version__ = "0.1.0"
