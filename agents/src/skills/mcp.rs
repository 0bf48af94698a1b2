//! MCP servers as skills (being written).
