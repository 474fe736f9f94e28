"""The SDK's one exception, raised only by constructors on bad arguments.

Exception tree::

    ValueError
    └── ConfigError        bad constructor argument (Client, VisitorMiddleware)

Nothing else escapes the SDK: after construction every public method logs and falls back to
the default variant (see ``guard.swallow_errors``).
"""


class ConfigError(ValueError):
    """A constructor argument is invalid; the message names the argument."""
