"""The lowest layer: what one example is, and the run-wide settings it is drawn under.

- :mod:`~linconv.core.geometry`: ConvGeometry, the shape of one Conv1d/2d/3d;
- :mod:`~linconv.core.cases`: Case, a geometry plus dtype, values, layout and seed, which builds
  its tensors deterministically;
- :mod:`~linconv.core.config`: the size budget and the selected dtypes;
- :mod:`~linconv.core.fileio`: atomic file writes.

Imports only torch and the standard library; every other layer may import it.
"""
