"""Write side: the HTTP command API and the OCPP gateway, which turn requests into events."""
