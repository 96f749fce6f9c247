"""Identity: accounts with argon2id passwords, signed access tokens (JWKS), rotating refresh tokens."""
