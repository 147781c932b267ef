from satgate.caveats import RequestFacts

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def facts(**overrides) -> RequestFacts:
    values = {"now": NOW, "method": "GET", "path": "/v1/items", "host": "api.example.com", "source_ip": "10.1.2.3"}
    values.update(overrides)
    return RequestFacts(**values)
