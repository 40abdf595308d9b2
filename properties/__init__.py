"""The property tests: one module per relation (see each module's docstring)."""
