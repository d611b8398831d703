"""Outbound network calls, guarded against reaching the inside (SSRF).

- :mod:`conveyor.net.policy` (standard library only): which addresses may be
  called, the operator's allowlist, and :class:`~conveyor.net.policy.OutboundRefused`.
- :mod:`conveyor.net.guard` (aiohttp): :class:`~conveyor.net.guard.OutboundClient`,
  which applies the policy to the address it actually connects to.

Nothing is imported here, so reading settings does not load aiohttp (about 0.4 s).
Used by the built-in ``http`` task, and meant for webhook delivery.
"""
