"""Read side: the HTTP query API, served only from read models."""
