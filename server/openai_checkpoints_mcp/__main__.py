from openai_checkpoints_mcp import main

main()
