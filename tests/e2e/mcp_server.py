"""A real MCP server (the official SDK, Streamable HTTP) with two tools, run as the upstream behind Envoy."""

import sys

import uvicorn
from mcp.server.mcpserver import MCPServer

server = MCPServer("satgate-test-tools")


@server.tool()
def search(query: str) -> str:
    """Pretend to search."""
    return f"results for {query}"


@server.tool()
def fetch_page(url: str) -> str:
    """Pretend to fetch a page."""
    return f"contents of {url}"


if __name__ == "__main__":
    port = int(sys.argv[1])
    app = server.streamable_http_app(stateless_http=True, json_response=True, host="127.0.0.1")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
