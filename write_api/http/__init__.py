"""HTTP plumbing the write API's routes share: JSON bodies, idempotency, the typed app keys."""
