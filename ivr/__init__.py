"""ivr: follows an Asterisk call center's callers over AMI and keeps their billing ledger."""

# The one place the version is written: pyproject.toml reads it (dynamic), and
# `ivr --version` says it.
__version__ = "0.1.0"
