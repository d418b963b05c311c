"""`make demo`: placeholder until the example shop exists."""

print("affy_middleware demo: coming soon")
