"""citation-monitor: link-rot and content audits for citation-heavy sites."""

__version__ = "0.1.0"
