"""``python -m qualys_connector.multi_main`` is ``process-multiple``."""
from .cli import process_multiple_main

if __name__ == "__main__":
    process_multiple_main()
