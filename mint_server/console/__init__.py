"""The Mint's web console (SPEC: Console): server-rendered pages over the admin API's own operations and roles."""
