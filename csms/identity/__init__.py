"""Who is calling: bearer tokens (ours and trusted OIDC providers') verified into a `Principal`."""
