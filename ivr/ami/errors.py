"""What an AMI action or connection can fail with; every one is an AmiError."""

from __future__ import annotations


class AmiError(Exception):
    """The PBX answered `Response: Error`; str(exc) is its Message text."""


class AmiDisconnected(AmiError):
    """Not connected, or the connection dropped while the action was pending."""


class AmiLoginError(AmiError):
    """The PBX rejected Login; str(exc) is its Message text."""
