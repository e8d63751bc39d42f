"""pop3watch: self-hosted POP3 monitoring."""

__version__ = "0.1.0"
