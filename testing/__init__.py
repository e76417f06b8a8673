"""Real test servers and harnesses on loopback, shared by ``tests/`` and ``bench/``.

Dovecot, PostgreSQL, an SMTP sink, a throw-away PKI, an OAuth introspection endpoint, the
163-like IMAP ID gate, Chromium's location, a real ``feedback-bot serve`` process in the report's
deployment (``serve.py``) and the fault harness that kills such processes. Nothing here imports
pytest (the fixtures are in ``tests/fixtures_servers.py``), and ``bench/`` imports this package,
never ``tests/``.
"""
