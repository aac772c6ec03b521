"""Identity (OneID): identifier normalisation, the identity graph and its rules."""

# Importing the package registers its topic on the bus (``identity.profiles``).
from oneloop.identity import feed as feed
