"""FMC host input emulator: the TLS/TLV service of port 8307 and a network map in SQLite.

``netmap`` stores hosts and scan results, ``processor`` applies the commands of one connection
the way the FMC's host input module does (docs/host-input.md §1), ``server`` speaks TLS + TLV, and
``cli`` is the ``fmc-emulator`` command.
"""
