"""Outbound delivery: the worker that sends the outbox, and the one module that makes HTTP calls."""
