"""The one error every layer may raise and every command turns into one line, exit 2."""


class ConfigError(Exception):
    """One configuration mistake, fully described."""
