"""Sending one event: the attempt, what its outcome means (verdicts, retry policy, breaker),
leads held for their click, refusals, the on_error hook and the HTTP transport."""
