"""Users: names, hashed badges and PINs, authentication with lockout."""
