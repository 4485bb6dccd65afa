"""Singer tap for the 1Password Events API: sign-in attempts, item usages and audit events."""
