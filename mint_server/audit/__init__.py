"""Audit delivery: refusals aggregated into the chain, webhooks, retention with signed checkpoints, and the
records of keyring and configuration changes."""
