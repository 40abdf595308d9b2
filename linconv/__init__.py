"""linconv: property-based verification that PyTorch's Linear and Conv2d formulations compute
the same linear maps, within an honest error bound."""

__version__ = "0.1.0"
