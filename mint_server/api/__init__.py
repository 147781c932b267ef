"""The Mint's front ends: HTTP/JSON (aiohttp) and gRPC, both thin over the same services."""
