"""Segments: a rule language over profiles, compiled to SQL, with live membership."""
