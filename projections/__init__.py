"""Projectors: position-tracked consumers of the event log that build read models."""
