"""Use cases: what callers (CLI, SDK, web) ask of Conveyor, scoped to a tenant."""
