"""Built-in tasks that need no code: ``http`` (a guarded HTTP request) and ``shell``
(a command, off unless the operator enables it). See docs/builtin-tasks.md.

- :mod:`conveyor.builtins.catalog`: names, declared settings, who may create shell
  jobs (standard library and domain only; the job service uses it).
- :mod:`conveyor.builtins.http`, :mod:`conveyor.builtins.shell`: the handlers.
- :mod:`conveyor.builtins.registration`: :class:`BuiltinTasks` adds them to an app.

Nothing is imported here, so the job service can use the catalog without loading
the runtime.
"""
