"""Authentication: passwords, JWT access and refresh tokens, the current user."""
