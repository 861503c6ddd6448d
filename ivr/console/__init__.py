"""The console: the operator's desk, the supervisor's board, the office and the
engineers' tickets, served by ivr itself under /console: sessions.py (sign-in and
who may open what), pages.py (the pages and their live events), live.py (a desk's
calls), export.py (the CSV download), render.py with templates/, and static/ (one
ES module per page)."""
