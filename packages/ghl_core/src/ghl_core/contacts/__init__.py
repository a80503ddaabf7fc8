"""Contacts: the people a location talks to."""
