"""The service desk: tickets, complaints and claims, their numbers, and the
registry that keeps every one of them (ivr/desk/registry.py)."""
