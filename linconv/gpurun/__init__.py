"""The prepared GPU run (``python -m linconv gpu``): everything the suite checks on CUDA, in one
command that fits a short loan of a GPU, and the page it writes (docs/gpu/<device>.md).

- :mod:`~linconv.gpurun.plan`: the stages (every property in every precision mode of the device,
  the cross-device relation and the corpus with them, the fault benchmark, the benchmarks), their
  time budget, and running them with a deadline;
- :mod:`~linconv.gpurun.probe`: the device, driver and library versions, and the measured TF32
  vs IEEE error of the float32 formulations (as shipped vs strict);
- :mod:`~linconv.gpurun.document`: reading what the stages wrote and rendering the page.

Imports :mod:`linconv.core`, :mod:`linconv.lanes`, :mod:`linconv.measure`,
:mod:`linconv.relations` and :mod:`linconv.runreport`.
"""
