"""``python -m qualys_connector`` is ``qualys-connector``."""
from .cli import qualys_connector_main

qualys_connector_main()
