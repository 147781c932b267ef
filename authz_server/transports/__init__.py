"""Transport adapters around the one check pipeline (authz_server/check.py): gRPC today, HTTP beside it next."""
