"""Censys ASM logbook API emulator: cursor + pages, the API key check, error bodies, faults."""
