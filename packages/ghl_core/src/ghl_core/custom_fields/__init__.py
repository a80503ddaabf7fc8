"""Custom fields: per-location definitions, and validation of the values contacts carry."""
