"""OpenChat payouts package."""
