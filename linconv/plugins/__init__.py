"""pytest plugins of the verification run (conftest.py loads them):

- :mod:`~linconv.plugins.options`: options, Hypothesis profiles, the device x precision-mode
  parameter, an injected fault, the report header;
- :mod:`~linconv.plugins.session`: what the run has seen, and which relations it checks;
- :mod:`~linconv.plugins.completeness`: whether the run finished (the report's stamp, and the stub
  report a verification run writes once it has collected its tests);
- :mod:`~linconv.plugins.report`: timing every formulation and writing the run report;
- :mod:`~linconv.plugins.regressions`: keeping every counterexample as a pending corpus case.

The top layer beside the command line: may import anything below.
"""
