"""Macaroon tokens: identifier, v2 binary wire format, HMAC chain, mint/attenuate and verification."""
