"""The scheduler service: profiles both sides, plans, re-plans on reports, pushes plans."""
