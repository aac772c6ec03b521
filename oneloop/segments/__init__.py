"""Segments: a rule language over profiles, compiled to SQL, with live membership."""

# Importing the package registers its topic on the bus (``segments.membership``).
from oneloop.segments import feed as feed
