"""Policies and tenants: the trust policy models and their matching, the files they load from, the ones managed
through the admin API with their states, and which tenant owns each issuer."""
