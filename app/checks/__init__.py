"""Check runs on catalog pull requests: evaluate the change, report it to GitHub."""
