"""The defaults of the HTTP transport's limits, in a module of constants so that the CLI can show them without
importing the transport (the stdio server's start-up never pays for it)."""

DEFAULT_HEADER_TIMEOUT = 10.0
"""Seconds a client has to send a request's head and body."""
DEFAULT_IDLE_TIMEOUT = 15.0
"""Seconds a kept-alive connection may wait for its next request: longer than the SDK client's pool keeps an idle
connection (httpx: 5 s), so the client, not the server, closes it, and a request never meets a closing socket."""
DEFAULT_MAX_SESSIONS = 1000
"""Sessions kept at once; at this many the idlest is evicted for a new one. An idle session holds some 25-35 KB."""
DEFAULT_SESSION_IDLE_TIMEOUT = 1800.0
"""Seconds a session may go without a request before it is closed (the SDK's 30 minutes)."""
MAX_SESSIONS_ENV = "OPENAI_CHECKPOINTS_MCP_MAX_SESSIONS"
SESSION_IDLE_TIMEOUT_ENV = "OPENAI_CHECKPOINTS_MCP_SESSION_IDLE_TIMEOUT"
