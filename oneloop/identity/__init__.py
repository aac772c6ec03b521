"""Identity (OneID): identifier normalisation, the identity graph and its rules."""
