"""The server's HTTP side (streamable HTTP, bearer auth, Host/Origin checks); not to be confused with `api.client`,
the HTTP client of the upstream API."""
