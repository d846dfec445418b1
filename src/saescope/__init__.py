"""saescope: sparse autoencoders on language models, from harvesting activations to viewing features."""

__version__ = "0.1.0"
