"""Planfix chat API: chat systems integrated with Planfix (seeds/planfix-webchat-api.txt)."""
