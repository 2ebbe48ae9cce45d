"""OpenChat assistant package."""
