"""Profiles: the OneID with its events, computed traits, tags and scores."""
