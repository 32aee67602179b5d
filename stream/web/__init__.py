"""The live web timeline of `stream run --web` (server.py, page.html)."""
