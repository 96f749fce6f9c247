"""Handlers for charger-initiated OCPP actions, one module per protocol version."""
