"""One module per LSP method (or group of closely tied notifications)."""
