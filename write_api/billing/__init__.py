"""Billing: the Stripe gateway, the process manager charging priced sessions, payment methods, webhooks."""
