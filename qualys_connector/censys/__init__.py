"""censys-qualys: keep Qualys VM's scanning scope in step with the Censys ASM attack surface.

``api`` talks to Censys, ``logbook`` walks the logbook in bounded batches, ``decide`` turns a
batch of events into IPs to add and to exclude (pure), ``position`` remembers where we
stopped, ``sync`` runs one cycle, ``cli`` is the command.
"""
