"""The weekly audit report: rendering (Jinja2) and delivery (SMTP outbox)."""
