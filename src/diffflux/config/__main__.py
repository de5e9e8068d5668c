"""``python -m diffflux.config [--markdown | --example]``: print the config reference or example."""

import sys

from diffflux.config import example_toml, reference_markdown

if __name__ == "__main__":
    print(reference_markdown() if "--markdown" in sys.argv[1:] else example_toml())
