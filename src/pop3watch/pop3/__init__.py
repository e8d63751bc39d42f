"""pop3 layer."""
