"""Qualys VM API emulator: report launch/list/fetch/delete, asset IPs, excluded IPs, limits, faults."""
