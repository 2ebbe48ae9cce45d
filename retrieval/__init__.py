"""OpenChat retrieval package."""
