"""pytest wiring for linconv: every piece is a plugin module under linconv/plugins/."""

pytest_plugins: list[str] = [
    "linconv.plugins.options",
    "linconv.plugins.regressions",
    "linconv.plugins.completeness",
    "linconv.plugins.report",
]
