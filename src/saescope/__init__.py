"""saescope: sparse autoencoders on language models, from harvesting
activations to viewing features."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # saescope.load_sae / saescope.save_sae without importing torch at `import saescope`
    if name == "load_sae":
        from saescope.sae.loading import load_sae

        return load_sae
    if name == "save_sae":
        from saescope.sae.native import save_sae

        return save_sae
    raise AttributeError(f"module 'saescope' has no attribute {name!r}")
