"""Backups that restore: a deduplicated repository, consistency modes, restore into any root."""
