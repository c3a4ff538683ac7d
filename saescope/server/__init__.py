"""The MCP server: tools, resources and a prompt over the saescope library (see :mod:`saescope.server.app`)."""
