"""The web dashboard: server-rendered pages at ``/`` for people who sign in.

:func:`conveyor.web.dashboard.mount.install_dashboard` adds it to the app; nothing
is imported here, so :mod:`conveyor.web.auth` can read the session cookie without
a cycle.
"""
