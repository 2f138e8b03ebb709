"""openai-checkpoints-mcp: an MCP server that reads OpenAI fine-tuning jobs, pages through every checkpoint,
and says which one to deploy, and why."""

from __future__ import annotations


def main() -> None:
    """Console entry point (``openai-checkpoints-mcp``)."""
    from .cli import main as cli_main

    cli_main()


__all__ = ["main"]
