"""The catalog YAML format: parsing and validation."""
