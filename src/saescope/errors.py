"""User-facing errors: raised for bad input, printed by the CLI as one
paragraph without a traceback."""


class SaescopeError(Exception):
    """An error the user can fix: the message names the field or file,
    the value and what is accepted."""


class ConfigError(SaescopeError):
    """A configuration field has a bad value."""

    def __init__(self, field: str, value: object, accepted: str) -> None:
        self.field, self.value, self.accepted = field, value, accepted
        super().__init__(f"{field}: got {value!r}; expected {accepted}.")
