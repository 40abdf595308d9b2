"""The run report: one typed document per run, built by the pytest plugin, merged across jobs,
rendered as Markdown and a plot, and read by the gate.

- :mod:`~linconv.runreport.schema`: the document's TypedDicts and the one validator;
- :mod:`~linconv.runreport.completeness`: whether the run finished (the stamp), and the refusal of
  a report that is not known to be whole;
- :mod:`~linconv.runreport.build`: the document from a session's tallies, timings and costs;
- :mod:`~linconv.runreport.files`: report.json / report.md / report.png on disk;
- :mod:`~linconv.runreport.render`: report.md and the terminal summary;
- :mod:`~linconv.runreport.merge`: several jobs' reports as one;
- :mod:`~linconv.runreport.markdown`: formatting shared with the gate;
- :mod:`~linconv.runreport.plot`: time ratio against problem size (matplotlib, optional).

Imports :mod:`linconv.timing`, :mod:`linconv.relations` (statements) and below.
"""

from linconv.runreport.build import (
    build_report,
    environment,
    machine_identity,
    merge_rejected,
    merge_tallies,
    rejected_rows,
    tally_rows,
)
from linconv.runreport.files import REPORT_JSON, REPORT_MD, REPORT_PNG, load_report, render_from, write_report
from linconv.runreport.merge import merge_report_files, merge_reports
from linconv.runreport.render import render_markdown, summary_lines
from linconv.runreport.schema import OUTCOME_RANK, OUTCOMES, SCHEMA_VERSION, ReportError, validate

__all__ = [
    "OUTCOMES",
    "OUTCOME_RANK",
    "REPORT_JSON",
    "REPORT_MD",
    "REPORT_PNG",
    "SCHEMA_VERSION",
    "ReportError",
    "build_report",
    "environment",
    "load_report",
    "machine_identity",
    "merge_report_files",
    "merge_reports",
    "merge_rejected",
    "merge_tallies",
    "rejected_rows",
    "render_from",
    "render_markdown",
    "summary_lines",
    "tally_rows",
    "validate",
    "write_report",
]
