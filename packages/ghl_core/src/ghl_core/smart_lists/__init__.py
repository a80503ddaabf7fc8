"""Smart lists: a named, saved contact search (query, filter and sort) of a location."""
