"""What every backend shares: counters, rate-limited logs, call timings, fork safety."""
