"""Users and their roles: the example domain's aggregate root."""
