"""The OpenAI-compatible fine-tuning API: HTTP client, retries, pagination, errors and lenient models.

Nothing here imports `mcp`.
"""
