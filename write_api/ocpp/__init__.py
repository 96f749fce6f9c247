"""The OCPP-J gateway: chargers' WebSocket connections, their frames and their payloads."""
