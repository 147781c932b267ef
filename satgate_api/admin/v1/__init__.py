"""Generated from protos/ by ./dev protos; only these __init__ files are hand-written."""
