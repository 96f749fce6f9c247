"""HTTP plumbing every API shares: problem documents, bearer authentication, the client's address."""
