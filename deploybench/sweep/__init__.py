"""Sweeps: plan runs from a config and execute stages locally or on Ray."""
