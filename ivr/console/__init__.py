"""The console: the operator's desk, the supervisor's board, the office and the
engineers' tickets, served by ivr itself under /console (web.py)."""
