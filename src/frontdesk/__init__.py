"""Frontdesk: a self-hosted helpdesk that speaks the Pyrus and Planfix integration protocols."""

__version__ = "0.1.0"
