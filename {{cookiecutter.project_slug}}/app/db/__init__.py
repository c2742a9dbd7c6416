"""Database machinery: engine, sessions, declarative base and mixins."""
