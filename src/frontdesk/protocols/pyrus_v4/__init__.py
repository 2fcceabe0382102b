"""Pyrus API v4: auth, telephony, files, and the tasks/forms/members subset agents and bots use."""
