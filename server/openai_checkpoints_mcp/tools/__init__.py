"""The MCP tools, one module per family: its argument types, description, logic and result models.

`server.tool_table()` lists every tool once; `arguments` holds the argument types several families share, `common`
the result base class, annotations and the `tool` declaration.
"""
