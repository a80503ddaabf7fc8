"""Tags: a location's tag list, and tags on contacts."""
