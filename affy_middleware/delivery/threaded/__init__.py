"""The thread backend's machinery: one process's state, the memory queue, per-visit
ordering, the sender threads and the relay between the queue and the outbox."""
