"""Templates and campaigns: bulk sends of a template to a frozen audience, each recipient at most once."""
