"""The debug endpoints for web frameworks and servers (each imports its framework, if any, itself)."""
