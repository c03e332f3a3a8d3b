"""qualys-connector: Qualys reports into Cisco Firepower host input, Censys ASM into Qualys.

The public surface is small on purpose: the errors (``qualys_connector.errors``), the
records (``qualys_connector.records``) and the host input protocol core
(``qualys_connector.hostinput``). Everything else is wiring for the command-line tools.
"""

__version__ = "2.0.0"
