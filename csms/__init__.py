"""Charging Station Management System: event-sourced core, shared by every role."""
