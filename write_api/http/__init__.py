"""HTTP plumbing the write API's routes share: problem details, JSON bodies, the client's address."""
