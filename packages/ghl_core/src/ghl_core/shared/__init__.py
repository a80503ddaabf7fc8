"""The shared kernel: errors, ids, time, pagination, events and the unit of work."""
