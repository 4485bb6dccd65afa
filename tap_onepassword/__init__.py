"""Singer tap for the 1Password Events API."""
