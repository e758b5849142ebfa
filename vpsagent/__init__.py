"""vpsagent: ask your servers, test them, audit every command."""

__version__ = "0.1.0"
